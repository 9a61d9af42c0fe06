/**
 * Finding, starting and stopping the lab daemon from the connector's side, and the lab
 * transport wired to it.
 *
 * `patchline run --lab FILE` must survive its own death: the daemon runs detached (own process
 * group, output to DIR/daemon.log), so a resumed connector finds it through DIR/daemon.json and a
 * health check, and meets the hosts as they were. A daemon nobody talks to stops on its own.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PatchlineError, usageError } from '../domain/errors.ts';
import { createLabTransport, type LabDaemonConnection } from '../transports/lab.ts';
import type { Transport } from '../transports/transport.ts';
import { sourceCli } from './bundle.ts';
import { isUnanswered, readDaemonFile, startLabDaemon, type LabDaemonMode } from './daemon.ts';

/** How long a starting daemon may take to write daemon.json (tsx start + loading the scenario). */
const DAEMON_START_TIMEOUT_MS = 30_000;
/** How long a health check of an existing daemon may take before we call it dead. */
const HEALTH_TIMEOUT_MS = 2_000;
/** Poll interval while waiting for daemon.json or for a stopping daemon to exit. */
const POLL_INTERVAL_MS = 50;
/** How long a stopping daemon may take to exit before it is killed. */
const STOP_TIMEOUT_MS = 10_000;
/** Lines of DIR/daemon.log quoted when a daemon fails to start. */
const LOG_TAIL_LINES = 20;

export interface EnsureLabDaemonOptions {
  readonly scenarioPath: string;
  readonly dir: string;
  /** Idle period after which the detached daemon stops; default the daemon's (10 min). */
  readonly idleShutdownMs?: number;
  /** The detached daemon runs its hosts' agents and providers inside itself (large fleets). */
  readonly agentsInProcess?: boolean;
  readonly signal?: AbortSignal;
}

export interface RunningLabDaemon {
  readonly url: string;
  readonly token: string;
  readonly pid: number;
  /** True when this call started it, false when an existing daemon serving DIR was reused. */
  readonly started: boolean;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    signal?.throwIfAborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolvePromise();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Health {
  readonly pid: number;
  readonly dir: string;
  readonly scenarioPath: string;
  readonly mode: LabDaemonMode;
}

async function health(url: string, token: string): Promise<Health | null> {
  try {
    const response = await fetch(`${url}/health`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
    });
    if (response.status !== 200) return null;
    return (await response.json()) as Health;
  } catch (error) {
    // Refused, timed out or garbage: that daemon is not serving; the caller starts another.
    if (isUnanswered(error)) return null;
    throw error;
  }
}

async function logTail(dir: string): Promise<string> {
  try {
    const lines = (await readFile(join(dir, 'daemon.log'), 'utf8')).trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n');
  } catch (error) {
    return `(no daemon.log: ${(error as Error).message})`;
  }
}

/** A live daemon serving `dir`, or null. Throws when it serves another scenario. */
async function findDaemon(dir: string, scenarioPath: string): Promise<RunningLabDaemon | null> {
  const file = await readDaemonFile(dir);
  if (file === null || !processAlive(file.pid)) return null;
  const h = await health(file.url, file.token);
  if (h === null || h.pid !== file.pid) return null;
  if (resolve(h.scenarioPath) !== resolve(scenarioPath)) {
    throw usageError(
      'LAB_DIR_IN_USE',
      `the lab directory ${dir} is served by a daemon (pid ${file.pid}) for another scenario, ${h.scenarioPath}. Use another --lab-dir, or stop it with "patchline lab daemon --stop --dir ${dir}".`,
      { context: { dir, pid: file.pid } },
    );
  }
  return { url: file.url, token: file.token, pid: file.pid, started: false };
}

/**
 * Reuses the live daemon serving DIR, or starts `patchline lab daemon` detached and waits for it.
 *
 * @example
 *   const lab = await ensureLabDaemon({ scenarioPath: 'patch-night.yaml', dir: '/var/lib/patchline/lab' });
 *   // lab.url, lab.token; lab.started tells whether this call started it
 */
export async function ensureLabDaemon(options: EnsureLabDaemonOptions): Promise<RunningLabDaemon> {
  const dir = resolve(options.dir);
  const scenarioPath = resolve(options.scenarioPath);
  const existing = await findDaemon(dir, scenarioPath);
  if (existing) return existing;

  await mkdir(dir, { recursive: true });
  const logFile = await open(join(dir, 'daemon.log'), 'a');
  const cli = sourceCli();
  const [command, ...prefix] = cli.argv;
  if (command === undefined)
    throw new PatchlineError('LAB_DAEMON_FAILED', 'cannot find the patchline command to start the lab daemon');
  const args = [...prefix, 'lab', 'daemon', '--scenario', scenarioPath, '--dir', dir];
  if (options.idleShutdownMs !== undefined)
    args.push('--idle-seconds', String(Math.ceil(options.idleShutdownMs / 1000)));
  if (options.agentsInProcess) args.push('--inprocess');
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', logFile.fd, logFile.fd], cwd: dir });
    child.once('exit', (code, signal) => (exited = { code, signal }));
    await new Promise<void>((resolvePromise, reject) => {
      child.once('spawn', resolvePromise);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid ?? -1;
    const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const file = await readDaemonFile(dir);
      if (file !== null && file.pid === pid) return { url: file.url, token: file.token, pid, started: true };
      if (exited !== null) {
        const { code, signal } = exited;
        throw new PatchlineError(
          'LAB_DAEMON_FAILED',
          `the lab daemon exited at start (code ${code}, signal ${signal}); its log says:\n${await logTail(dir)}`,
          { context: { dir } },
        );
      }
      await sleep(POLL_INTERVAL_MS, options.signal);
    }
    throw new PatchlineError(
      'LAB_DAEMON_FAILED',
      `the lab daemon did not start within ${DAEMON_START_TIMEOUT_MS / 1000} s; see ${join(dir, 'daemon.log')}:\n${await logTail(dir)}`,
      { context: { dir } },
    );
  } finally {
    await logFile.close();
  }
}

/** Stops the daemon serving DIR (if any) and waits until its process is gone. True if one ran. */
export async function stopLabDaemon(dir: string): Promise<boolean> {
  const file = await readDaemonFile(resolve(dir));
  if (file === null || !processAlive(file.pid)) return false;
  try {
    await fetch(`${file.url}/shutdown`, {
      method: 'POST',
      headers: { authorization: `Bearer ${file.token}` },
      signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
    });
  } catch (error) {
    // It did not answer: signal it instead.
    if (!isUnanswered(error)) throw error;
    process.kill(file.pid, 'SIGTERM');
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (processAlive(file.pid)) {
    if (Date.now() > deadline) {
      process.kill(file.pid, 'SIGKILL');
      break;
    }
    await sleep(POLL_INTERVAL_MS);
  }
  return true;
}

/** How the connector reaches the daemon for each lab mode. */
export interface LabTransportMode {
  readonly scenarioPath: string;
  readonly dir: string;
  /** Where agents and providers run: as processes per task, or inside the daemon. */
  readonly mode: LabDaemonMode;
  /**
   * Run the daemon as a detached process (the default for mode `process`). With mode `inprocess`
   * this keeps the virtual hosts out of the connector's process: they survive a killed connector,
   * and the connector's memory is its own.
   */
  readonly detached?: boolean;
  readonly idleShutdownMs?: number;
}

export function labDaemonConnection(options: LabTransportMode): LabDaemonConnection {
  const detached = options.detached ?? options.mode === 'process';
  let inProcess: ReturnType<typeof startLabDaemon> | undefined;
  let logStream: WriteStream | undefined;
  return {
    async connect(signal) {
      if (detached) {
        const { url, token } = await ensureLabDaemon({
          ...options,
          agentsInProcess: options.mode === 'inprocess',
          ...(signal ? { signal } : {}),
        });
        return { url, token };
      }
      // In-process: the hosts live and die with this connector (no idle shutdown needed). Their
      // notes (reboots, agents' HTTP retries, failed reboots) go to DIR/daemon.log, as a detached
      // daemon's do: without them a host that never rebooted leaves no trace of why.
      if (inProcess === undefined) {
        mkdirSync(options.dir, { recursive: true });
        const stream = createWriteStream(join(options.dir, 'daemon.log'), { flags: 'a' });
        stream.on('error', (error) =>
          process.emitWarning(`patchline: cannot write ${join(options.dir, 'daemon.log')}: ${error.message}`),
        );
        logStream = stream;
        inProcess = startLabDaemon({
          scenarioPath: options.scenarioPath,
          dir: options.dir,
          mode: 'inprocess',
          idleShutdownMs: 0,
          log: (message) => stream.write(`${new Date().toISOString()} ${message}\n`),
        });
      }
      const { url, token } = await inProcess;
      return { url, token };
    },
    async close() {
      if (inProcess !== undefined) await (await inProcess).close();
      const stream = logStream;
      logStream = undefined;
      if (stream) await new Promise<void>((done) => stream.end(done));
    },
  };
}

/**
 * The lab transport for `patchline run --lab FILE`: process mode uses (or starts) the detached
 * daemon; in-process mode runs the daemon and every agent inside the connector.
 *
 * @example
 *   const transport = openLabTransport({ scenarioPath: 'examples/lab/patch-night.yaml', dir, mode: 'process' });
 *   await transport.resolveTargets(['web01', 'web02']);
 */
export function openLabTransport(options: LabTransportMode): Transport {
  return createLabTransport({ dir: resolve(options.dir), daemon: labDaemonConnection(options) });
}
