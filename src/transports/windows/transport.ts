/**
 * The `windows` transport: the connector itself runs on Windows (like OpCon's server part) and
 * reaches each target with its own domain credentials — `schtasks.exe /S` to register and start
 * the one-shot SYSTEM task, CIM (powershell -ComputerName) for boot id, servicing state and the
 * agent's process, `\\host\C$` for the request and log files, `\\host\pipe\…` for the agent's
 * log at the end. The client runs from a share (`--client-share`).
 *
 * Thin on purpose: every command line comes from the builders beside this file (tested as text
 * against golden files) and runs through one WindowsExecutor. This file has been tested only
 * with a fake executor answering with transcripts; it has NOT run on Windows.
 */
import { win32 } from 'node:path';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import type { AgentEvent } from '../../domain/agent-log.ts';
import { usageError } from '../../domain/errors.ts';
import { type Inventory, type InventoryHost, resolveInventoryTargets } from '../inventory.ts';
import { LaunchRefusedError, TransportError, type HostStatus, type Transport } from '../transport.ts';
import { agentTaskSpec, requestFileName, TARGET_LOG_DIR, TARGET_REQUEST_DIR, CLIENT_FILES } from './agent-launch.ts';
import type { WindowsExecutor } from './executor.ts';
import {
  agentProcessScript,
  bootIdScript,
  findAgentScript,
  parseAgentPids,
  parseAgentProcess,
  parseBootId,
  parseServicingState,
  powershellArgv,
  servicingStateScript,
  stopProcessScript,
} from './powershell.ts';
import {
  agentTaskName,
  judgeStartQuery,
  parseSchtasksError,
  schtasksCreate,
  schtasksDelete,
  schtasksQueryStatus,
  schtasksRun,
  type TaskStatus,
} from './schtasks.ts';
import { classifyShutdownExit, shutdownAbortArgv, shutdownRebootArgv } from './shutdown.ts';
import { buildAgentTaskXml, encodeTaskXml } from './task-xml.ts';

/** How long the agent may take to appear after /Run (node.exe from a share on a busy server). */
const LAUNCH_CONFIRM_TIMEOUT_MS = 60_000;
const LAUNCH_CONFIRM_POLL_MS = 1_000;

export interface WindowsTransportOptions {
  readonly executor: WindowsExecutor;
  /** The share holding client folders (`\\files01\patchline`); the version folder is used. */
  readonly clientShare: string;
  /** The client version folder to run (`patchline client pack` made it). */
  readonly clientVersion: string;
  readonly inventory: Inventory | null;
  readonly log?: (message: string) => void;
  /** Injected for tests; defaults to a real timer. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Messages a CIM/WinRM call prints when the computer does not answer (English). */
const UNREACHABLE_TEXT =
  /WinRM cannot complete the operation|cannot find the computer|The RPC server is unavailable|network path was not found|No such host is known|The client cannot connect/i;
const ACCESS_DENIED_TEXT = /Access is denied|Access denied|0x80070005/i;

function parseEvents(text: string): AgentEvent[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AgentEvent);
}

/** `C:\ProgramData\…` on the target as the connector reaches it: `\\addr\C$\ProgramData\…`. */
export function adminSharePath(address: string, localPath: string): string {
  const m = /^([A-Za-z]):\\(.*)$/.exec(localPath);
  if (!m) throw usageError('WINDOWS_ARG_UNQUOTABLE', `not a local Windows path: ${localPath}`);
  return `\\\\${address}\\${m[1]!.toUpperCase()}$\\${m[2]}`;
}

/** The agent's local pipe (`\\.\pipe\x`) as a remote reader opens it (`\\addr\pipe\x`). */
export function remotePipePath(address: string, pipePath: string): string | null {
  const m = /^\\\\\.\\pipe\\(.+)$/i.exec(pipePath);
  return m ? `\\\\${address}\\pipe\\${m[1]}` : null;
}

export function createWindowsTransport(options: WindowsTransportOptions): Transport {
  const { executor } = options;
  const log = options.log ?? (() => undefined);
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => sleepTimer(ms, undefined, { signal }));
  const clientDir = win32.join(options.clientShare, options.clientVersion);
  const hosts = new Map<string, InventoryHost>();
  let clientChecked = false;

  /** The host's address: from the targets resolved, else the inventory, else the name itself. */
  const address = (host: string): string =>
    hosts.get(host.toLowerCase())?.address ?? options.inventory?.hosts.get(host.toLowerCase())?.address ?? host;

  async function powershell(host: string, script: string, signal: AbortSignal): Promise<string> {
    const result = await executor.run(powershellArgv(script), signal);
    if (result.exitCode === 0) return result.stdout;
    const text = `${result.stderr}\n${result.stdout}`.trim();
    if (ACCESS_DENIED_TEXT.test(text))
      throw new TransportError(
        'auth',
        host,
        `${host} refused the connector's Windows account (CIM): ${text.split('\n')[0]}. Run the connector as an account that is an administrator of ${host}`,
      );
    if (UNREACHABLE_TEXT.test(text))
      throw new TransportError('unreachable', host, `${host} does not answer CIM/WinRM: ${text.split('\n')[0]}`);
    throw new TransportError(
      'internal',
      host,
      `PowerShell on the connector failed for ${host} (exit ${result.exitCode}): ${text.slice(0, 500)}`,
    );
  }

  /** Runs a schtasks line; a failure becomes the scheduler's own error, classified. */
  async function schtasks(host: string, argv: readonly string[], signal: AbortSignal): Promise<string> {
    const result = await executor.run(argv, signal);
    if (result.exitCode === 0) return result.stdout;
    const error = parseSchtasksError(result.stderr || result.stdout);
    const what = `schtasks ${argv[1]} on ${host}: ${error.message}`;
    if (error.kind === 'unreachable') throw new TransportError('unreachable', host, what);
    throw new LaunchRefusedError(
      host,
      error.hresult ?? `exit ${result.exitCode}`,
      `${what}${error.kind === 'access-denied' ? ` — the connector's account must be an administrator of ${host}` : ''}`,
    );
  }

  return {
    name: 'windows',

    async resolveTargets(names) {
      const resolved = resolveInventoryTargets(options.inventory, names);
      for (const h of resolved) hosts.set(h.name.toLowerCase(), h);
      return resolved.map((h) => h.name);
    },

    async listTargets() {
      return options.inventory === null ? [] : [...options.inventory.hosts.values()].map((h) => h.name);
    },

    async prepare(host, input) {
      if (!clientChecked) {
        // The share must hold the client folder; the agent checks every digest itself on start.
        const manifest = await executor.readFile(win32.join(clientDir, CLIENT_FILES.manifest));
        if (manifest === null) {
          throw usageError(
            'CLIENT_SHARE_EMPTY',
            `${clientDir} holds no client (no ${CLIENT_FILES.manifest}): lay it out with patchline client pack --node node.exe --out ${options.clientShare}`,
          );
        }
        clientChecked = true;
      }
      if (input.offlineCabSource === undefined) return {};
      const bytes = await executor.readFile(input.offlineCabSource);
      if (bytes === null) throw usageError('OFFLINE_CAB_NOT_FOUND', `${input.offlineCabSource} does not exist`);
      const local = 'C:\\ProgramData\\Patchline\\cab\\wsusscn2.cab';
      await executor.writeFile(adminSharePath(address(host), local), bytes);
      return { offlineCabPath: local };
    },

    async launch(host, request, signal) {
      const addr = address(host);
      const requestPath = win32.join(TARGET_REQUEST_DIR, requestFileName(request));
      await executor.writeFile(adminSharePath(addr, requestPath), Buffer.from(JSON.stringify(request)));
      const name = agentTaskName(request);
      const spec = agentTaskSpec({
        clientDir,
        requestPath,
        description: `Patchline run ${request.runId}, host ${host}, cycle ${request.cycle}`,
      });
      const xmlFile = win32.join(executor.tempDir, `patchline-${requestFileName(request).replace(/\.json$/, '')}.xml`);
      await executor.writeFile(xmlFile, encodeTaskXml(buildAgentTaskXml(spec)));
      try {
        await schtasks(host, schtasksCreate(name, xmlFile, addr), signal);
        await schtasks(host, schtasksRun(name, addr), signal);
        const pid = await confirmStarted(host, addr, name, requestPath, signal);
        log(`${host}: agent started as SYSTEM (task ${name}, pid ${pid})`);
        return { taskId: name, pid };
      } finally {
        await executor.removeFile(xmlFile);
        // The task has done its job once the agent runs (or failed to); leave nothing behind.
        const deleted = await executor
          .run(schtasksDelete(name, addr), AbortSignal.timeout(30_000))
          .catch((error: unknown) => ({ exitCode: -1, stdout: '', stderr: String(error) }));
        if (deleted.exitCode !== 0)
          log(`${host}: could not delete task ${name}: ${parseSchtasksError(deleted.stderr).message}`);
      }
    },

    async probe(host, signal) {
      const addr = address(host);
      let bootId: string;
      try {
        bootId = parseBootId(await powershell(host, bootIdScript(addr), signal));
      } catch (error) {
        if (error instanceof TransportError && error.kind === 'unreachable')
          return { reachable: false, bootId: null, servicingIdle: false } satisfies HostStatus;
        throw error;
      }
      const servicing = parseServicingState(await powershell(host, servicingStateScript(addr), signal));
      return { reachable: true, bootId, servicingIdle: servicing.idle };
    },

    async fetchLog(host, request, signal) {
      const addr = address(host);
      const pipe = request.pipePath === undefined ? null : remotePipePath(addr, request.pipePath);
      if (pipe !== null) {
        const fromPipe = await executor.readPipe(pipe, signal);
        if (fromPipe !== null) {
          log(`${host}: log read from the agent's pipe ${pipe}`);
          return parseEvents(fromPipe.toString('utf8'));
        }
      }
      const file = adminSharePath(
        addr,
        win32.join(
          TARGET_LOG_DIR,
          `${request.runId}-${request.host}-${request.cycle}.jsonl`.replace(/[/\\:*?"<>|]/g, '_'),
        ),
      );
      const bytes = await executor.readFile(file);
      if (bytes === null) return null;
      log(`${host}: log read from ${file}`);
      return parseEvents(bytes.toString('utf8'));
    },

    async isRunning(host, launch, signal) {
      const state = parseAgentProcess(await powershell(host, agentProcessScript(launch.pid, address(host)), signal));
      // A reused PID runs something else: only our agent counts.
      return state.running && /agent\s+cycle/i.test(state.commandLine ?? '');
    },

    async stop(host, launch) {
      await powershell(host, stopProcessScript(launch.pid, address(host)), AbortSignal.timeout(60_000));
    },

    async reboot(host) {
      const addr = address(host);
      const comment = 'Patchline: restart to finish installing updates';
      for (let attempt = 0; attempt < 2; attempt++) {
        const result = await executor.run(shutdownRebootArgv(comment, addr), AbortSignal.timeout(60_000));
        const outcome = classifyShutdownExit(result.exitCode);
        if (outcome === 'started' || outcome === 'in-progress') return;
        if (outcome === 'already-scheduled' && attempt === 0) {
          // Another shutdown with a delay is pending: cancel it and restart now.
          await executor.run(shutdownAbortArgv(addr), AbortSignal.timeout(60_000));
          continue;
        }
        const text = (result.stderr || result.stdout).trim();
        if (result.exitCode === 5 || ACCESS_DENIED_TEXT.test(text))
          throw new TransportError('auth', host, `shutdown /m \\\\${addr} was refused: ${text || 'access denied'}`);
        if (result.exitCode === 53 || UNREACHABLE_TEXT.test(text))
          throw new TransportError('unreachable', host, `shutdown /m \\\\${addr}: ${text || 'network path not found'}`);
        throw new TransportError(
          'internal',
          host,
          `shutdown /m \\\\${addr} failed with exit ${result.exitCode}: ${text}`,
        );
      }
    },

    async close() {
      hosts.clear();
    },
  };

  /** Polls until the agent's process is seen; a task that ended without one is a refusal. */
  async function confirmStarted(
    host: string,
    addr: string,
    name: string,
    requestPath: string,
    signal: AbortSignal,
  ): Promise<number> {
    // Counted polls, not wall-clock time: the sleep is injected (tests run it instantly).
    let status: TaskStatus | null = null;
    let unanswered = 0;
    for (let poll = 0; ; poll++) {
      const pids = parseAgentPids(await powershell(host, findAgentScript(requestPath, addr), signal));
      if (pids.length > 0) return pids[0]!;
      const query = await executor.run(schtasksQueryStatus(name, addr), signal);
      // The same judgement as over SSH: only "no such task", "access denied" or a failing Last
      // Result end the launch; a query that fails (a busy RPC) says nothing about the task.
      const verdict = judgeStartQuery(
        { code: query.exitCode, stdout: query.stdout, stderr: query.stderr || query.stdout },
        name,
      );
      if (verdict.kind === 'lost')
        throw new LaunchRefusedError(
          host,
          verdict.hresult,
          `Task Scheduler on ${host} lost task ${name} before its agent started: ${verdict.message}`,
        );
      if (verdict.kind === 'failed') {
        throw new LaunchRefusedError(
          host,
          verdict.hresult,
          `the task ${name} on ${host} ended without an agent running (last result ${verdict.hresult}): check that ${win32.join(clientDir, CLIENT_FILES.node)} is readable by ${host}'s computer account (share permissions: Domain Computers, read)`,
        );
      }
      if (verdict.kind === 'waiting') status = verdict.status;
      else if (unanswered++ === 0)
        log(`${host}: schtasks /Query of task ${name} failed (${verdict.message}): asking again`);
      if (poll >= LAUNCH_CONFIRM_TIMEOUT_MS / LAUNCH_CONFIRM_POLL_MS) {
        throw new LaunchRefusedError(
          host,
          status?.lastResult ?? 'unknown',
          `no agent process appeared on ${host} within ${LAUNCH_CONFIRM_TIMEOUT_MS / 1000} s of starting task ${name} (state ${status?.statusText ?? 'unknown'})`,
        );
      }
      await sleep(LAUNCH_CONFIRM_POLL_MS, signal);
    }
  }
}
