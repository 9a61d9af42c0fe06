/**
 * The SSH lab's model of Windows: interprets exactly the command lines the SSH transport sends
 * (cmd.exe-escaped argv from src/transports/windows/ and ssh/scripts.ts) against a lab host —
 * its Task Scheduler and boot through the lab daemon's host API, its files under `drive/`.
 * Anything else gets cmd.exe's "is not recognized" answer, so a transport that sends a line the
 * model does not know fails loudly instead of passing by accident. It is a model: nothing here
 * ran on Windows; outputs copy the documented formats (schtasks CSV, SUCCESS/ERROR lines,
 * PowerShell's one JSON line).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CycleRequest } from '../../domain/agent-log.ts';
import { splitCommandLine, splitArgv } from '../../transports/windows/cmd-line.ts';
import {
  agentProcessScript,
  bootIdScript,
  decodePowerShell,
  servicingStateScript,
} from '../../transports/windows/powershell.ts';
import { decodeTaskXml } from '../../transports/windows/task-xml.ts';
import { matchFileDigestsScript, matchTcpReachableScript } from '../../transports/ssh/scripts.ts';

/** Faults of one host's SSH side (the scenario's faults are the Windows Update side's). */
export interface SshHostFaults {
  /** The host's sshd accepts none of the connector's keys. */
  readonly authRefused?: boolean;
  /** After reboot N the host presents a new host key (a reinstall, or someone in between). */
  readonly hostKeyChangedAfterReboot?: number;
  /** From reboot N on the host boots, but its sshd does not come back. */
  readonly sshdNotBackAfterReboot?: number;
  /** Every SSH connection to the host breaks once, while (or once) a cycle installs, after its launch was confirmed. */
  readonly dropConnectionMidInstall?: boolean;
  /** Every command answers this much later (a slow WAN link). */
  readonly slowLinkMs?: number;
  /** The host cannot open connections to the connector's callback (a firewall). */
  readonly callbackBlocked?: boolean;
  /**
   * The first N `schtasks /Query` of each task fail the way a busy Task Scheduler's RPC does
   * ("The remote procedure call failed."); the task itself runs.
   */
  readonly schedulerQueryFails?: number;
}

export interface ModelHost {
  readonly name: string;
  readonly hostDir: string;
  /** The SFTP chroot: `drive/C:/…` is the host's C: drive. */
  readonly drive: string;
  readonly faults: SshHostFaults;
  dropConnections(): number;
}

export interface ExecAnswer {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface WindowsModelOptions {
  readonly daemon: { readonly url: string; readonly token: string };
  readonly hosts: ReadonlyMap<string, ModelHost>;
  readonly log: (message: string) => void;
}

/** Task Scheduler's "Last Result" values (decimal, as schtasks prints them). */
const SCHED_S_TASK_RUNNING = 267009; // 0x41301
const SCHED_S_TASK_HAS_NOT_RUN = 267011; // 0x41303
/** FILETIME epoch (1601-01-01) to Unix epoch, in ms. */
const FILETIME_EPOCH_OFFSET_MS = 11_644_473_600_000;
/** How often a dropConnectionMidInstall fault looks at the agent's log for an install. */
const DROP_WATCH_MS = 25;

interface ModelTask {
  readonly name: string;
  readonly xml: string;
  readonly command: string;
  readonly arguments: string;
  state: 'ready' | 'running';
  lastResult: number;
  lastRun: string;
  pid?: number;
  labTaskId?: string;
  requestPath?: string;
  /** The agent's log file in the drive (the dropConnectionMidInstall fault watches it). */
  logFile?: string;
  /** Status queries so far (the schedulerQueryFails fault). */
  queries: number;
}

const ok = (stdout: string): ExecAnswer => ({ stdout, stderr: '', exitCode: 0 });
const fail = (stderr: string, exitCode = 1): ExecAnswer => ({ stdout: '', stderr, exitCode });

function xmlValue(xml: string, element: string): string | undefined {
  const m = new RegExp(`<${element}>([^<]*)</${element}>`).exec(xml);
  if (!m) return undefined;
  return m[1]!
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a.toLowerCase() === name.toLowerCase());
  return i >= 0 ? argv[i + 1] : undefined;
}

function csvRow(fields: readonly string[]): string {
  return fields.map((f) => `"${f.replace(/"/g, '""')}"`).join(',');
}

/** ISO boot id → FILETIME text, what `LastBootUpTime.ToFileTime()` prints. */
export function isoToFileTime(iso: string): string {
  return String((BigInt(Date.parse(iso)) + BigInt(FILETIME_EPOCH_OFFSET_MS)) * 10_000n);
}

export function createWindowsModel(options: WindowsModelOptions) {
  const tasks = new Map<string, Map<string, ModelTask>>();
  const dropped = new Set<string>();
  const { daemon, log } = options;

  /**
   * One call to the lab daemon's host API, on a connection of its own (`connection: close`). A
   * kept-alive connection was reset under load (read ECONNRESET; the patch night over SSH run
   * beside the lab one on two loaded cores, as in CI): the daemon closes a connection idle for
   * 5 s (Node's keepAliveTimeout) without reading a request that has just arrived on it, while
   * fetch, whose own idle bound is counted by undici's coarse timer that falls behind when the
   * event loop stalls (stalls of 3.4 s were measured in the SSH run's process), still lends that
   * connection out. The modelled command then answered "lab: fetch failed": a `schtasks /Query`
   * the transport took for a scheduler that had lost the task (exit 3), a `shutdown /r` that
   * failed (exit 70). Windows has no such failure; a fresh loopback connection per call costs
   * next to nothing.
   */
  const api = async (
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${daemon.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${daemon.token}`,
        connection: 'close',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };

  /** `C:\x\y` → the file in the host's drive; null for anything that is not a local path (UNC). */
  const local = (host: ModelHost, windowsPath: string): string | null => {
    const m = /^([A-Za-z]):\\(.*)$/.exec(windowsPath);
    if (!m) return null;
    return join(host.drive, `${m[1]!.toUpperCase()}:`, ...m[2]!.split('\\').filter((p) => p !== ''));
  };

  const hostTasks = (name: string): Map<string, ModelTask> => {
    let map = tasks.get(name);
    if (!map) tasks.set(name, (map = new Map()));
    return map;
  };

  async function running(host: ModelHost, task: ModelTask): Promise<boolean> {
    if (task.state !== 'running' || task.labTaskId === undefined) return false;
    const { status, json } = await api(
      'GET',
      `/hosts/${encodeURIComponent(host.name)}/tasks/${encodeURIComponent(task.labTaskId)}?pid=${task.pid ?? 0}`,
    );
    const still = status === 200 && json.running === true;
    if (!still) {
      task.state = 'ready';
      task.lastResult = 0;
    }
    return still;
  }

  function watchForInstall(host: ModelHost, logFile: string): void {
    if (dropped.has(host.name)) return;
    const timer = setInterval(() => {
      readFile(logFile, 'utf8').then(
        (text) => {
          if (!text.includes('"phase":"install"') || dropped.has(host.name)) return;
          dropped.add(host.name);
          clearInterval(timer);
          const n = host.dropConnections();
          log(
            `${host.name}: dropped every SSH connection mid-install (fault dropConnectionMidInstall; ${n} processes)`,
          );
        },
        () => undefined,
      );
    }, DROP_WATCH_MS);
    // Give up once the cycle is surely over.
    setTimeout(() => clearInterval(timer), 10 * 60_000).unref();
  }

  async function schtasks(host: ModelHost, argv: readonly string[]): Promise<ExecAnswer> {
    const verb = argv[1]?.toLowerCase();
    const name = option(argv, '/TN');
    if (name === undefined)
      return fail('ERROR: Invalid syntax. Mandatory option \'/TN\' is missing.\r\nType "SCHTASKS /? " for usage.\r\n');
    const own = hostTasks(host.name);
    const task = own.get(name.toLowerCase());
    if (verb === '/create') {
      const file = option(argv, '/XML');
      const path = file === undefined ? null : local(host, file);
      if (path === null || !existsSync(path)) return fail('ERROR: The system cannot find the file specified.\r\n');
      let xml: string;
      try {
        xml = decodeTaskXml(await readFile(path));
      } catch (error) {
        // What schtasks answers for a file that is not UTF-16 XML; the lab's log keeps the cause.
        log(`${host.name}: task ${name}: ${(error as Error).message}`);
        return fail('ERROR: The task XML is malformed.\r\n');
      }
      if (/<(TimeTrigger|CalendarTrigger|StartBoundary)\b/.test(xml))
        log(`${host.name}: task ${name} has a trigger with a start time (the transport must never register one)`);
      const command = xmlValue(xml, 'Command');
      if (command === undefined)
        return fail('ERROR: The task XML is missing a required element or attribute.\r\n(30,6):Exec:\r\n');
      if (task?.state === 'running') return fail('ERROR: An instance of this task is already running.\r\n');
      own.set(name.toLowerCase(), {
        name,
        xml,
        command,
        arguments: xmlValue(xml, 'Arguments') ?? '',
        state: 'ready',
        lastResult: SCHED_S_TASK_HAS_NOT_RUN,
        lastRun: 'N/A',
        queries: 0,
      });
      return ok(`SUCCESS: The scheduled task "${name}" has successfully been created.\r\n`);
    }
    if (task === undefined) return fail('ERROR: The system cannot find the file specified.\r\n');
    if (verb === '/run') return runTask(host, task);
    if (verb === '/query') {
      if (argv.some((a) => a.toLowerCase() === '/xml')) return ok(task.xml);
      if (task.queries++ < (host.faults.schedulerQueryFails ?? 0)) {
        log(`${host.name}: schtasks /Query of ${task.name} failed (fault schedulerQueryFails)`);
        return fail('ERROR: The remote procedure call failed.\r\n');
      }
      const isRunning = await running(host, task);
      const status = isRunning ? 'Running' : 'Ready';
      const result = isRunning ? SCHED_S_TASK_RUNNING : task.lastResult;
      return ok(
        `${csvRow([host.name.toUpperCase(), task.name, 'N/A', status, 'Interactive/Background', task.lastRun, String(result), 'Patchline', `${task.command} ${task.arguments}`])}\r\n`,
      );
    }
    if (verb === '/delete') {
      // Deleting a task does not stop what it started (as on Windows).
      own.delete(name.toLowerCase());
      return ok(`SUCCESS: The scheduled task "${name}" was successfully deleted.\r\n`);
    }
    return fail('ERROR: Invalid syntax.\r\n');
  }

  async function runTask(host: ModelHost, task: ModelTask): Promise<ExecAnswer> {
    const started = ok(`SUCCESS: Attempted to run the scheduled task "${task.name}".\r\n`);
    task.lastRun = new Date().toISOString();
    const program = local(host, task.command);
    const args = splitArgv(task.arguments);
    const requestArg = option(args, '--request');
    const requestPath = requestArg === undefined ? null : local(host, requestArg);
    // schtasks /Run only asks the scheduler; a program that cannot start shows in Last Result.
    if (program === null || !existsSync(program) || requestPath === null || !existsSync(requestPath)) {
      task.lastResult = 0x80070002 | 0; // ERROR_FILE_NOT_FOUND as the scheduler reports it
      return started;
    }
    const request = JSON.parse(await readFile(requestPath, 'utf8')) as CycleRequest;
    // The agent sees the host's files where Windows would have them.
    const mapped: CycleRequest = {
      ...request,
      ...(request.logFile !== undefined ? { logFile: local(host, request.logFile) ?? request.logFile } : {}),
      ...(request.offlineCabPath !== undefined
        ? { offlineCabPath: local(host, request.offlineCabPath) ?? request.offlineCabPath }
        : {}),
    };
    const { status, json } = await api('POST', `/hosts/${encodeURIComponent(host.name)}/tasks`, { request: mapped });
    if (status === 201) {
      task.state = 'running';
      task.pid = json.pid as number;
      task.labTaskId = json.taskId as string;
      task.requestPath = requestArg!;
      task.logFile = mapped.logFile;
    } else if (status === 409) {
      task.lastResult = Number.parseInt(String(json.hresult), 16) | 0;
      log(`${host.name}: the lab's task scheduler refused ${task.name}: ${String(json.message)}`);
    } else {
      return fail(`ERROR: The Task Scheduler service is not running.\r\n`);
    }
    return started;
  }

  async function powershell(host: ModelHost, argv: readonly string[]): Promise<ExecAnswer> {
    const encoded = option(argv, '-EncodedCommand');
    if (encoded === undefined) return fail('lab: only powershell -EncodedCommand is modelled\r\n');
    const script = decodePowerShell(encoded);
    if (script === bootIdScript() || script === servicingStateScript()) {
      const { status, json } = await api('GET', `/hosts/${encodeURIComponent(host.name)}/status`);
      if (status !== 200 || json.reachable !== true)
        return fail('Get-CimInstance : The service cannot be started.\r\n');
      if (script === bootIdScript()) return ok(`${JSON.stringify({ bootId: isoToFileTime(String(json.bootId)) })}\r\n`);
      return ok(
        `${JSON.stringify({ servicingInProgress: json.servicingIdle === true ? 0 : 2, rebootPending: false })}\r\n`,
      );
    }
    const pidMatch = /ProcessId = (\d+)/.exec(script);
    if (pidMatch && script === agentProcessScript(Number(pidMatch[1]))) {
      const pid = Number(pidMatch[1]);
      const task = [...hostTasks(host.name).values(), ...retired(host.name)].find((t) => t.pid === pid);
      if (!task || !(await running(host, task))) return ok('{"running":false}\r\n');
      return ok(`${JSON.stringify({ running: true, commandLine: `"${task.command}" ${task.arguments}` })}\r\n`);
    }
    const digestsDir = matchFileDigestsScript(script);
    if (digestsDir !== null) {
      const dir = local(host, digestsDir);
      const files: Record<string, string> = {};
      if (dir !== null && existsSync(dir)) {
        for (const name of await readdir(dir)) {
          const path = join(dir, name);
          if ((await stat(path)).isFile())
            files[name] = createHash('sha256')
              .update(await readFile(path))
              .digest('hex');
        }
      }
      return ok(`${JSON.stringify({ files })}\r\n`);
    }
    const probe = matchTcpReachableScript(script);
    if (probe !== null) {
      if (host.faults.callbackBlocked) return ok('{"reachable":false}\r\n');
      const { connect } = await import('node:net');
      const reachable = await new Promise<boolean>((resolve) => {
        const socket = connect(probe.port, probe.host);
        const timer = setTimeout(() => socket.destroy(), probe.timeoutMs);
        socket.once('connect', () => resolve(true));
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(false);
        });
        socket.once('connect', () => socket.destroy());
      });
      return ok(`${JSON.stringify({ reachable })}\r\n`);
    }
    return fail("lab: this PowerShell script is not part of the lab's model of Windows\r\n");
  }

  /** Tasks deleted after they started: their agents still run (isRunning asks by PID). */
  const retiredTasks = new Map<string, ModelTask[]>();
  const retired = (name: string): ModelTask[] => retiredTasks.get(name) ?? [];

  async function exec(hostName: string, command: string): Promise<ExecAnswer> {
    const host = options.hosts.get(hostName);
    if (!host) return fail(`lab: no host ${hostName}\r\n`);
    if (host.faults.slowLinkMs) await new Promise((r) => setTimeout(r, host.faults.slowLinkMs));
    let argv: string[];
    try {
      argv = splitCommandLine(command);
    } catch (error) {
      return fail(`lab: ${(error as Error).message}\r\n`);
    }
    const program = (argv[0] ?? '').toLowerCase().replace(/\.exe$/, '');
    switch (program) {
      case 'schtasks': {
        const before = hostTasks(host.name).get((option(argv, '/TN') ?? '').toLowerCase());
        const answer = await schtasks(host, argv);
        if (argv[1]?.toLowerCase() === '/delete' && before?.pid !== undefined) {
          retiredTasks.set(host.name, [...retired(host.name).slice(-20), before]);
          // The transport deletes the task once it has confirmed the agent: from then on a broken
          // link is a broken stream (a link broken during the launch is the launch's failure).
          if (host.faults.dropConnectionMidInstall && before.logFile !== undefined)
            watchForInstall(host, before.logFile);
        }
        return answer;
      }
      case 'powershell':
        return powershell(host, argv);
      case 'shutdown': {
        if (!argv.some((a) => a.toLowerCase() === '/r')) return fail('lab: only shutdown /r is modelled\r\n');
        const { status } = await api('POST', `/hosts/${encodeURIComponent(host.name)}/reboot`, {});
        return status === 202 ? ok('') : fail('A system shutdown is in progress.(1115)\r\n', 1115);
      }
      case 'taskkill': {
        const pid = Number(option(argv, '/PID'));
        const task = [...hostTasks(host.name).values(), ...retired(host.name)].find((t) => t.pid === pid);
        if (!task?.labTaskId || !(await running(host, task)))
          return fail(`ERROR: The process "${pid}" not found.\r\n`, 128);
        await api(
          'POST',
          `/hosts/${encodeURIComponent(host.name)}/tasks/${encodeURIComponent(task.labTaskId)}/stop`,
          {},
        );
        return ok(`SUCCESS: Sent termination signal to the process with PID ${pid}.\r\n`);
      }
      default:
        return fail(
          `'${argv[0] ?? ''}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n`,
        );
    }
  }

  return { exec };
}
