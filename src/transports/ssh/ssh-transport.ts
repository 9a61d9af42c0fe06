/**
 * The `ssh` transport: reaches Windows servers through their OpenSSH Server (cmd.exe as the
 * default shell, SFTP paths like `/C:/…`). Per cycle (DESIGN.md §5):
 *   prepare — copy the client to C:\ProgramData\Patchline\<version> when digests differ (or use a share);
 *   launch  — upload the request and the task XML (UTF-16) over SFTP; schtasks /Create /XML, /Run,
 *             confirm (/Query status, the agent's PID from its log), /Delete;
 *   stream  — the HTTP callback when the target reaches the connector, else the agent's log file
 *             read over SFTP by byte offset and relayed to the callback (chosen per host, logged);
 *   probe   — boot id (LastBootUpTime) and CBS servicing state through powershell -EncodedCommand;
 *   reboot  — shutdown /r when the engine must reboot a host itself.
 * Command lines come from the pure builders in src/transports/windows/ and ./scripts.ts; this file
 * only runs them. Every failure is a classified TransportError (failures.ts).
 */
import type { CycleRequest } from '../../domain/agent-log.ts';
import { usageError } from '../../domain/errors.ts';
import { LaunchRefusedError, type HostStatus, type LaunchResult, type Transport } from '../transport.ts';
import { argvToCmdLine } from '../windows/cmd-line.ts';
import {
  agentTaskXml,
  localClientDir,
  requestFileName,
  TARGET_LOG_DIR,
  TARGET_REQUEST_DIR,
} from '../windows/agent-launch.ts';
import {
  agentProcessScript,
  bootIdScript,
  parseAgentProcess,
  parseBootId,
  parseServicingState,
  powershellArgv,
  servicingStateScript,
} from '../windows/powershell.ts';
import {
  agentTaskName,
  isSchtasksSuccess,
  judgeStartQuery,
  parseSchtasksError,
  schtasksCreate,
  schtasksDelete,
  schtasksQueryStatus,
  schtasksRun,
} from '../windows/schtasks.ts';
import { classifyShutdownExit, shutdownAbortArgv, shutdownRebootArgv } from '../windows/shutdown.ts';
import { encodeTaskXml } from '../windows/task-xml.ts';
import { copyFiles, filesToCopy, localFiles, manifestClientFiles, type LocalFile } from './client-copy.ts';
import { SshConnection, type SshTarget, type ExecResult } from './connection.ts';
import { SSH_ERROR_CODES, isConnectionLoss, sshError } from './failures.ts';
import { KnownHostsFile } from './known-hosts.ts';
import { LogReader, LogRelay } from './log-reader.ts';
import {
  fileDigestsScript,
  parseFileDigests,
  parseReachable,
  sftpPath,
  taskkillArgv,
  tcpReachableScript,
} from './scripts.ts';
import { makeDirs, readFrom, writeAtomic } from './sftp-files.ts';
import { existsSync } from 'node:fs';
import { basename, join, win32 } from 'node:path';

/** One command on the target (a schtasks call, a CIM query) answers within this on a live host. */
const EXEC_TIMEOUT_MS = 60_000;
/** How long at most between two reads of a rebooting host's log (fetchLog). */
const FETCH_LOG_RETRY_MAX_MS = 2_000;
/** One SFTP unit of work (a log read, a client copy of a few MB) on a live host. */
const SFTP_TIMEOUT_MS = 60_000;
/** A probe answers quickly or the host counts as unreachable this time round. */
const PROBE_TIMEOUT_MS = 15_000;
/** How long the target may take to connect to our callback before we read its log instead. */
const CALLBACK_CHECK_TIMEOUT_MS = 3_000;
/**
 * After /Run, how often we look for the agent's first event (its PID): soon at first (an agent is
 * usually up within a second), then less often, so a slow start is not slowed further by a query
 * and a log read (two sessions on the target) every 200 ms.
 */
const CONFIRM_POLL_MS = 200;
const CONFIRM_POLL_MAX_MS = 1_000;
/** Where the offline catalog goes on a target (WUA as SYSTEM cannot read it from a share). */
const TARGET_CAB_DIR = 'C:\\ProgramData\\Patchline\\offline';
/** Where task XML files are uploaded for schtasks /XML. */
const TARGET_TASK_DIR = 'C:\\ProgramData\\Patchline\\tasks';

export type StreamMode = 'callback' | 'log';

export interface SshTransportOptions {
  readonly targets: readonly SshTarget[];
  readonly knownHostsFile: string;
  readonly acceptNewHostKeys: boolean;
  /** A local client folder (patchline client pack) to copy, or a share the targets read it from. */
  readonly client:
    | { readonly kind: 'copy'; readonly dir: string; readonly version: string }
    | { readonly kind: 'share'; readonly path: string };
  readonly env: NodeJS.ProcessEnv;
  /** Operator notes: which stream a host uses, keys recorded, files copied, a lost and resumed log. */
  readonly note: (host: string, message: string) => void;
  /** How often the log relay reads a log (log mode). */
  readonly logPollMs?: number;
  readonly readyTimeoutMs?: number;
}

function failedHResult(stderr: string): { hresult: string; message: string } {
  const parsed = parseSchtasksError(stderr);
  return { hresult: parsed.hresult ?? '0x80004005', message: parsed.message };
}

export function createSshTransport(
  options: SshTransportOptions,
): Transport & { streamMode(host: string): StreamMode | undefined } {
  const knownHosts = new KnownHostsFile(options.knownHostsFile);
  const byName = new Map(options.targets.map((t) => [t.name.toLowerCase(), t]));
  const connections = new Map<string, SshConnection>();
  const streams = new Map<string, StreamMode>();
  const readers = new Map<string, LogReader>();
  const relays = new Map<string, LogRelay>();
  let clientFiles: Promise<{ readonly files: readonly LocalFile[] }> | null = null;

  const target = (host: string): SshTarget => {
    const t = byName.get(host.toLowerCase());
    if (!t) throw usageError('UNKNOWN_HOST', `${host} is not in the inventory`, { context: { host } });
    return t;
  };
  const connection = (host: string): SshConnection => {
    const key = host.toLowerCase();
    let c = connections.get(key);
    if (!c) {
      c = new SshConnection(target(host), {
        knownHosts,
        acceptNewHostKeys: options.acceptNewHostKeys,
        env: options.env,
        readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
        keepaliveIntervalMs: 10_000,
        note: options.note,
      });
      connections.set(key, c);
    }
    return c;
  };

  /** Runs an argv on the target through cmd.exe; a dropped channel is `unreachable`. */
  async function run(
    host: string,
    argv: readonly string[],
    signal: AbortSignal,
    timeoutMs = EXEC_TIMEOUT_MS,
  ): Promise<ExecResult> {
    const c = connection(host);
    let result: ExecResult;
    try {
      result = await c.exec(argvToCmdLine(argv), AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]));
    } catch (error) {
      signal.throwIfAborted();
      if ((error as { kind?: string }).kind !== undefined) throw error;
      c.forget();
      if ((error as Error).name === 'TimeoutError')
        throw sshError(
          'unreachable',
          host,
          SSH_ERROR_CODES.unreachable,
          `${host}: ${argv[0]} got no answer over SSH within ${timeoutMs} ms`,
          error,
        );
      if (isConnectionLoss(error))
        throw sshError(
          'unreachable',
          host,
          SSH_ERROR_CODES.unreachable,
          `${host}: the SSH connection failed during ${argv[0]}: ${(error as Error).message}`,
          error,
        );
      throw sshError(
        'internal',
        host,
        SSH_ERROR_CODES.internal,
        `${host}: running ${argv[0]} over SSH failed: ${(error as Error).message}`,
        error,
      );
    }
    if (result.code === null) {
      c.forget();
      throw sshError(
        'unreachable',
        host,
        SSH_ERROR_CODES.unreachable,
        `${host}: the connection dropped while ${argv[0]} ran`,
      );
    }
    return result;
  }

  async function sftpOf(host: string) {
    try {
      return await connection(host).sftp();
    } catch (error) {
      if ((error as { kind?: string }).kind !== undefined) throw error;
      throw sshError(
        'unreachable',
        host,
        SSH_ERROR_CODES.unreachable,
        `${host}: SFTP failed: ${(error as Error).message}`,
        error,
      );
    }
  }

  /** Wraps SFTP work: a connection lost under it is `unreachable` and forgotten. */
  async function withSftp<T>(host: string, work: (sftp: Awaited<ReturnType<typeof sftpOf>>) => Promise<T>): Promise<T> {
    const sftp = await sftpOf(host);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Ending the connection fails every SFTP request still waiting on it, so the work settles.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          connection(host).forget();
          reject(
            sshError(
              'unreachable',
              host,
              SSH_ERROR_CODES.unreachable,
              `${host}: SFTP got no answer within ${SFTP_TIMEOUT_MS} ms`,
            ),
          );
        }, SFTP_TIMEOUT_MS);
      });
      return await Promise.race([work(sftp), timeout]);
    } catch (error) {
      if ((error as { kind?: string }).kind !== undefined) throw error;
      if (isConnectionLoss(error) || /No response|not connected|closed/i.test((error as Error).message)) {
        connection(host).forget();
        throw sshError(
          'unreachable',
          host,
          SSH_ERROR_CODES.unreachable,
          `${host}: the connection dropped during SFTP: ${(error as Error).message}`,
          error,
        );
      }
      throw sshError(
        'internal',
        host,
        SSH_ERROR_CODES.internal,
        `${host}: SFTP failed: ${(error as Error).message}`,
        error,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  const logPath = (request: Pick<CycleRequest, 'runId' | 'host' | 'cycle'>): string =>
    win32.join(TARGET_LOG_DIR, requestFileName(request).replace(/\.json$/, '.jsonl'));
  const readerKey = (host: string, request: Pick<CycleRequest, 'runId' | 'cycle'>) =>
    `${host.toLowerCase()}\0${request.runId}\0${request.cycle}`;
  const readerFor = (host: string, request: Pick<CycleRequest, 'runId' | 'host' | 'cycle'>): LogReader => {
    const key = readerKey(host, request);
    let reader = readers.get(key);
    if (!reader) {
      const path = sftpPath(logPath({ ...request, host }));
      reader = new LogReader((offset, max) => withSftp(host, (sftp) => readFrom(sftp, path, offset, max)));
      readers.set(key, reader);
    }
    return reader;
  };

  async function chooseStream(
    host: string,
    callback: { url: string } | undefined,
    signal: AbortSignal,
  ): Promise<StreamMode> {
    const known = streams.get(host.toLowerCase());
    if (known) return known;
    let mode: StreamMode = 'log';
    let why = 'no callback for this run';
    if (callback) {
      const url = new URL(callback.url);
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      const result = await run(
        host,
        powershellArgv(tcpReachableScript(url.hostname, port, CALLBACK_CHECK_TIMEOUT_MS)),
        signal,
      );
      const reachable = result.code === 0 && parseReachable(result.stdout);
      mode = reachable ? 'callback' : 'log';
      why = reachable ? `the target reaches ${url.host}` : `the target cannot reach ${url.host}`;
    }
    // Without a callback there is nothing to decide for later cycles: only a checked answer is kept.
    if (callback) streams.set(host.toLowerCase(), mode);
    options.note(
      host,
      mode === 'callback'
        ? `stream: the agent's HTTP callback (${why})`
        : `stream: the agent's log file read over SFTP by byte offset (${why})`,
    );
    return mode;
  }

  async function confirmStarted(
    host: string,
    taskName: string,
    request: CycleRequest,
    signal: AbortSignal,
  ): Promise<number> {
    const reader = readerFor(host, request);
    let unanswered = 0;
    for (let polls = 0; ; polls++) {
      // The scheduler's view and the agent's own first event, read at once (two channels).
      const [status] = await Promise.all([run(host, schtasksQueryStatus(taskName), signal), reader.poll()]);
      // The agent's own word first: once it has started, whatever the scheduler says is moot.
      const started = reader.all()?.find((e) => e.kind === 'cycle-started');
      if (started?.kind === 'cycle-started') return started.pid;
      const verdict = judgeStartQuery(status, taskName);
      if (verdict.kind === 'lost')
        throw new LaunchRefusedError(
          host,
          verdict.hresult,
          `Task Scheduler on ${host} lost task "${taskName}" before it started: ${verdict.message}`,
        );
      if (verdict.kind === 'failed')
        throw new LaunchRefusedError(
          host,
          verdict.hresult,
          `Task Scheduler on ${host} ran task "${taskName}", but it failed with ${verdict.hresult} before the agent started`,
        );
      if (verdict.kind === 'unanswered' && unanswered++ === 0)
        // The task was created and run: a query that fails says nothing about it, and its agent
        // may be running. Ask again (the launch's own bound ends this), and say so once.
        options.note(host, `schtasks /Query of task ${taskName} failed (${verdict.message}): asking again`);
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(CONFIRM_POLL_MAX_MS, CONFIRM_POLL_MS * 1.5 ** polls)),
      );
      signal.throwIfAborted();
    }
  }

  const transport: Transport & { streamMode(host: string): StreamMode | undefined } = {
    name: 'ssh',
    streamMode: (host) => streams.get(host.toLowerCase()),

    async listTargets() {
      return options.targets.map((t) => t.name);
    },

    async resolveTargets(names) {
      const unknown = names.filter((n) => !byName.has(n.toLowerCase()));
      if (unknown.length > 0)
        throw usageError(
          'UNKNOWN_HOST',
          `${unknown.join(', ')}: not in the inventory (it names ${options.targets
            .slice(0, 5)
            .map((t) => t.name)
            .join(
              ', ',
            )}${options.targets.length > 5 ? ', …' : ''}). Add ${unknown.length > 1 ? 'them' : 'it'}, or give user@host[:port].`,
          { context: { hosts: unknown.join(',') } },
        );
      return names.map((n) => target(n).name);
    },

    async prepare(host, input, signal) {
      const out: { offlineCabPath?: string } = {};
      if (options.client.kind === 'copy') {
        const { dir, version } = options.client;
        clientFiles ??= manifestClientFiles(dir);
        const local = (await clientFiles).files;
        const remoteDir = localClientDir(version);
        const digests = await run(host, powershellArgv(fileDigestsScript(remoteDir)), signal);
        if (digests.code !== 0)
          throw sshError(
            'internal',
            host,
            SSH_ERROR_CODES.internal,
            `${host}: cannot read the client's digests in ${remoteDir}: ${digests.stderr.trim()}`,
          );
        const todo = filesToCopy(local, parseFileDigests(digests.stdout));
        if (todo.length === 0) options.note(host, `client ${version} already in ${remoteDir} (digests match)`);
        else {
          const result = await withSftp(host, (sftp) => copyFiles(sftp, remoteDir, todo, local.length));
          options.note(
            host,
            `copied ${result.copied.length} of ${result.total} client files (${result.bytes} bytes) to ${remoteDir}: ${result.copied.join(', ')}`,
          );
        }
      }
      if (input.offlineCabSource !== undefined) {
        const cab = input.offlineCabSource;
        const cabDir = cab.replace(/[/\\][^/\\]*$/, '');
        const local = await localFiles(
          cabDir,
          [basename(cab), `${basename(cab)}.root.pem`].filter((name) => existsSync(join(cabDir, name))),
        );
        const digests = await run(host, powershellArgv(fileDigestsScript(TARGET_CAB_DIR)), signal);
        const todo = filesToCopy(local, digests.code === 0 ? parseFileDigests(digests.stdout) : {});
        if (todo.length > 0) await withSftp(host, (sftp) => copyFiles(sftp, TARGET_CAB_DIR, todo, local.length));
        out.offlineCabPath = win32.join(TARGET_CAB_DIR, basename(cab));
      }
      return out;
    },

    async launch(host, request, signal): Promise<LaunchResult> {
      const mode = await chooseStream(host, request.callback, signal);
      const clientDir = options.client.kind === 'copy' ? localClientDir(options.client.version) : options.client.path;
      const { callback, ...rest } = request;
      // In log mode nobody takes the log from the pipe: it is on disk already, so no hand-over wait.
      const onTarget: CycleRequest =
        mode === 'callback' && callback
          ? { ...request, logFile: logPath(request) }
          : { ...rest, logFile: logPath(request), logHandoverTimeoutSeconds: 0 };
      const requestPath = win32.join(TARGET_REQUEST_DIR, requestFileName(request));
      const taskName = agentTaskName(request);
      const xmlPath = win32.join(TARGET_TASK_DIR, `${requestFileName(request).replace(/\.json$/, '')}.xml`);
      const xml = agentTaskXml({
        clientDir,
        requestPath,
        description: `Patchline run ${request.runId}, host ${request.host}, cycle ${request.cycle}`,
      });
      await withSftp(host, async (sftp) => {
        for (const dir of [TARGET_REQUEST_DIR, TARGET_TASK_DIR, TARGET_LOG_DIR]) await makeDirs(sftp, sftpPath(dir));
        await writeAtomic(sftp, sftpPath(requestPath), Buffer.from(JSON.stringify(onTarget, null, 2)));
        await writeAtomic(sftp, sftpPath(xmlPath), encodeTaskXml(xml));
      });
      // A relaunch of this cycle starts a fresh log: read it from the start.
      readers.delete(readerKey(host, request));
      relays.get(host.toLowerCase())?.stop();
      for (const argv of [schtasksCreate(taskName, xmlPath), schtasksRun(taskName)]) {
        const result = await run(host, argv, signal);
        if (result.code !== 0 || !isSchtasksSuccess(result.stdout)) {
          const failure = parseSchtasksError(result.stderr);
          // An earlier attempt of this very cycle started its agent, and then the connection broke
          // before we heard so: that agent is the cycle's (IgnoreNew); confirm and adopt it.
          if (failure.kind === 'already-running') {
            options.note(
              host,
              `task ${taskName} is already running (an earlier launch of this cycle got through): taking over its agent`,
            );
            break;
          }
          const { hresult, message } = failedHResult(result.stderr);
          throw new LaunchRefusedError(
            host,
            hresult,
            `Task Scheduler on ${host} refused ${argv[1]} of task "${taskName}": ${message}`,
          );
        }
      }
      let pid: number;
      try {
        pid = await confirmStarted(host, taskName, request, signal);
      } finally {
        // The task has done its work once the agent runs (or failed): never leave it registered.
        await run(host, schtasksDelete(taskName), AbortSignal.timeout(EXEC_TIMEOUT_MS)).catch((error: unknown) =>
          options.note(host, `could not delete task ${taskName}: ${(error as Error).message}`),
        );
      }
      if (mode === 'log' && callback) {
        relays.set(
          host.toLowerCase(),
          new LogRelay({
            reader: readerFor(host, request),
            callback,
            pollMs: options.logPollMs ?? 1_000,
            note: (message) => options.note(host, message),
          }),
        );
      }
      return { taskId: taskName, pid };
    },

    async probe(host, signal): Promise<HostStatus> {
      try {
        // Two channels of one connection, at once: a probe costs one round trip, not two.
        const [boot, servicing] = await Promise.all([
          run(host, powershellArgv(bootIdScript()), signal, PROBE_TIMEOUT_MS),
          run(host, powershellArgv(servicingStateScript()), signal, PROBE_TIMEOUT_MS),
        ]);
        if (boot.code !== 0 || servicing.code !== 0) return { reachable: false, bootId: null, servicingIdle: false };
        return {
          reachable: true,
          bootId: parseBootId(boot.stdout),
          servicingIdle: parseServicingState(servicing.stdout).idle,
        };
      } catch (error) {
        signal.throwIfAborted();
        if ((error as { kind?: string }).kind === 'unreachable')
          return { reachable: false, bootId: null, servicingIdle: false };
        throw error;
      }
    },

    async fetchLog(host, request, signal) {
      const reader = readerFor(host, request);
      for (let attempt = 0; ; attempt++) {
        signal.throwIfAborted();
        try {
          await reader.poll();
          return reader.all();
        } catch (error) {
          if ((error as { kind?: string }).kind !== 'unreachable') throw error;
          // The agent reboots the host once its log is safe on disk, so the engine often asks
          // while the host is down: read on from the offset once it answers again, within the
          // engine's deadline, rather than give the cycle up as lost with its results.
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, Math.min(FETCH_LOG_RETRY_MAX_MS, 250 * 2 ** attempt));
            signal.addEventListener(
              'abort',
              () => {
                clearTimeout(timer);
                reject(error);
              },
              { once: true },
            );
          });
        }
      }
    },

    async isRunning(host, launch, signal) {
      const result = await run(host, powershellArgv(agentProcessScript(launch.pid)), signal);
      if (result.code !== 0)
        throw sshError(
          'internal',
          host,
          SSH_ERROR_CODES.internal,
          `${host}: asking for process ${launch.pid} failed: ${result.stderr.trim()}`,
        );
      const process = parseAgentProcess(result.stdout);
      // A reused PID is not our agent: its command line names the task's request file.
      return process.running && (process.commandLine ?? '').toLowerCase().includes('agent cycle');
    },

    async stop(host, launch) {
      const result = await run(host, taskkillArgv(launch.pid), AbortSignal.timeout(EXEC_TIMEOUT_MS));
      // 128: no such process — it ended on its own, nothing left to stop.
      if (result.code !== 0 && result.code !== 128)
        throw sshError(
          'internal',
          host,
          SSH_ERROR_CODES.internal,
          `${host}: taskkill /PID ${launch.pid} failed: ${result.stderr.trim()}`,
        );
    },

    async reboot(host) {
      const argv = shutdownRebootArgv('Patchline: restart to finish installing updates');
      let result: ExecResult;
      try {
        result = await run(host, argv, AbortSignal.timeout(EXEC_TIMEOUT_MS));
      } catch (error) {
        // The host went down under the command: that is the reboot we asked for.
        if ((error as { kind?: string }).kind === 'unreachable') return;
        throw error;
      }
      let outcome = classifyShutdownExit(result.code ?? 0);
      if (outcome === 'already-scheduled') {
        await run(host, shutdownAbortArgv(), AbortSignal.timeout(EXEC_TIMEOUT_MS));
        result = await run(host, argv, AbortSignal.timeout(EXEC_TIMEOUT_MS));
        outcome = classifyShutdownExit(result.code ?? 0);
      }
      if (outcome === 'failed' || outcome === 'already-scheduled')
        throw sshError(
          'internal',
          host,
          SSH_ERROR_CODES.internal,
          `${host}: shutdown /r failed (exit ${result.code}): ${result.stderr.trim()}`,
        );
    },

    async close() {
      for (const relay of relays.values()) relay.stop();
      relays.clear();
      for (const c of connections.values()) c.close();
      connections.clear();
    },
  };
  return transport;
}
