/**
 * The lab host daemon: one HTTP server on 127.0.0.1 that plays every virtual Windows host of a
 * scenario — its task scheduler, its boot (boot id, reboot, reachability, servicing after boot)
 * and the lab's fake upstream that serves update payloads.
 *
 * Host routes need `authorization: Bearer <token>` (the token is in `DIR/daemon.json`, mode 0600);
 * an agent gets a per-host control token that only allows its own host's reboot and status.
 * Payload routes are public, like Microsoft's download servers. Boot state lives in
 * `DIR/hosts/<name>/boot.json`, so a daemon restarted on the same DIR meets its hosts as they were.
 *
 *   GET  /hosts                          → {hosts: [names]}
 *   GET  /hosts/:name/status             → 200 {reachable, bootId, servicingIdle} | 503 {reachable:false}
 *   POST /hosts/:name/tasks {request}    → 201 {taskId, pid} | 409 {hresult, message} | 503
 *   GET  /hosts/:name/tasks/:id[?pid=N]  → {running}
 *   POST /hosts/:name/tasks/:id/stop     → 200 | 404
 *   POST /hosts/:name/reboot             → 202 | 503 (already rebooting or down)
 *   POST /shutdown                       → 202, then the daemon stops
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { CycleRequest } from '../domain/agent-log.ts';
import { usageError } from '../domain/errors.ts';
import { ensureBundle, type CliCommand } from './bundle.ts';
import {
  readBootFile,
  writeBootFile,
  writeJsonAtomic,
  initHostDir,
  completeReboot,
  type BootInfo,
} from './host-state.ts';
import type { Launcher, LaunchHost } from './launcher.ts';
import { createInProcessLauncher } from './launcher-inprocess.ts';
import { createProcessLauncher } from './launcher-process.ts';
import { createPayloadStore } from './payloads.ts';
import { loadScenario, type Scenario, type ScenarioHost } from './scenario.ts';
import { SchedulerRefusedError, TaskScheduler } from './task-scheduler.ts';

export type LabDaemonMode = 'process' | 'inprocess';

/** Default idle period after which a daemon nobody talks to stops (a killed connector leaves none behind). */
export const DEFAULT_IDLE_SHUTDOWN_MS = 10 * 60_000;
/** Unscaled seconds CBS keeps servicing after a boot (ServicingInProgress=2), × timeScale. */
export const SERVICING_AFTER_BOOT_SECONDS = 20;
/** A reboot waits at most this long for the host's processes to die before the host goes down anyway. */
const KILL_WAIT_MS = 5_000;
/** Logged by close() once every host's agents ended and its files are written. */
export const POWERED_OFF_NOTE = 'lab daemon: hosts powered off, every agent ended';
/** Largest request body accepted (a CycleRequest with long KB lists is a few KB). */
const MAX_BODY_BYTES = 1024 * 1024;
export const DAEMON_FILE = 'daemon.json';
/** Host dirs initialised at once at start (bounded: each is a few fsynced writes). */
const HOST_INIT_BATCH = 32;
/** A live daemon answers its health check at once; one that does not within this is taken for dead. */
const HEALTH_CHECK_TIMEOUT_MS = 2_000;

export interface StartLabDaemonOptions {
  readonly scenarioPath: string;
  readonly dir: string;
  readonly mode: LabDaemonMode;
  /** Port to listen on; default: the one in an existing daemon.json if free, else a random one. */
  readonly port?: number;
  /** Stop after this long without host API calls and with no task running; 0 = never. */
  readonly idleShutdownMs?: number;
  /** Where the daemon writes its own notes (bundle built, host rebooted …). */
  readonly log?: (message: string) => void;
  /** The clock for boot ids and state files (timers stay real). */
  readonly now?: () => Date;
  /** Told when a host goes down (reboot started, or never returns) and when it is up again (the SSH lab stops and starts its sshd). */
  readonly onHostState?: (host: string, state: 'up' | 'rebooting' | 'down') => void;
}

export interface LabDaemon {
  readonly url: string;
  readonly token: string;
  readonly dir: string;
  /** Settles once the daemon stopped (close, POST /shutdown or idle shutdown). */
  readonly closed: Promise<void>;
  hostDir(name: string): string;
  close(): Promise<void>;
}

/** boot.json as the daemon keeps it: host-state's BootInfo plus reachability. */
interface BootFile extends BootInfo {
  /** up: answers; rebooting: down until the reboot completes; down: never returns. */
  readonly state?: 'up' | 'rebooting' | 'down';
  /** Reboots started so far (neverReturnAfterReboot counts these). */
  readonly rebootsStarted?: number;
  readonly rebootStartedAt?: string | null;
  /** Until then CBS is servicing and `servicingIdle` is false. */
  readonly servicingUntil?: string | null;
}

/** The per-host control token an agent uses to reboot its own host (docs/internals.md §6). */
export function hostControlToken(daemonToken: string, host: string): string {
  return createHmac('sha256', daemonToken).update(`control:${host}`).digest('hex');
}

/** A boot id strictly after the previous one, even if the clock did not move. */
export function nextBootId(previous: string, now: Date): string {
  const prevMs = Date.parse(previous);
  const ms = Number.isNaN(prevMs) ? now.getTime() : Math.max(now.getTime(), prevMs + 1);
  return new Date(ms).toISOString();
}

/** One virtual host: its task scheduler and its boot life cycle. */
class VirtualHost {
  private boot: BootFile;
  private timer: NodeJS.Timeout | undefined;
  /**
   * The boot.json writes and boot completion under way. close() waits for them: a daemon
   * restarted on the same DIR must read what this one last decided (a host that went down for
   * good must not come back up because its write was cut off).
   */
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    readonly spec: ScenarioHost,
    readonly hostDir: string,
    readonly scheduler: TaskScheduler,
    boot: BootInfo,
    private readonly timeScale: number,
    private readonly now: () => Date,
    private readonly log: (message: string) => void,
    private readonly onState: (host: string, state: 'up' | 'rebooting' | 'down') => void = () => undefined,
  ) {
    this.boot = boot;
  }

  get state(): 'up' | 'rebooting' | 'down' {
    return this.boot.state ?? 'up';
  }

  /** After a daemon restart: a host that was mid-reboot finishes it (at once if overdue). */
  resume(): void {
    if (this.state === 'rebooting') this.scheduleBootCompletion();
  }

  status(): { reachable: boolean; bootId: string | null; servicingIdle: boolean } {
    if (this.state !== 'up') return { reachable: false, bootId: null, servicingIdle: false };
    const until = this.boot.servicingUntil;
    const servicingIdle = !until || this.now().getTime() >= Date.parse(until);
    return { reachable: true, bootId: this.boot.bootId, servicingIdle };
  }

  /**
   * Starts a reboot: the host stops answering at once; `killTasks` (run after the caller
   * answered its HTTP request) kills everything the host runs. False when not up.
   */
  beginReboot(): { readonly killTasks: () => Promise<void> } | null {
    if (this.state !== 'up') return null;
    const rebootsStarted = (this.boot.rebootsStarted ?? 0) + 1;
    const neverReturns = this.spec.faults.neverReturnAfterReboot === rebootsStarted;
    this.boot = {
      ...this.boot,
      state: neverReturns ? 'down' : 'rebooting',
      rebootsStarted,
      rebootStartedAt: this.now().toISOString(),
    };
    this.log(
      `${this.spec.name}: reboot ${rebootsStarted} started${neverReturns ? ' (fault: it never comes back)' : ''}`,
    );
    this.onState(this.spec.name, this.state);
    const persisted = this.persist();
    return {
      killTasks: async () => {
        await persisted;
        await this.killAll();
        if (!neverReturns) this.scheduleBootCompletion();
      },
    };
  }

  async killAll(): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolvePromise) => {
      timeout = setTimeout(() => {
        this.log(`${this.spec.name}: some processes did not stop within ${KILL_WAIT_MS} ms`);
        resolvePromise();
      }, KILL_WAIT_MS);
    });
    await Promise.race([this.scheduler.killAll(), bound]);
    clearTimeout(timeout);
  }

  private scheduleBootCompletion(): void {
    const rebootMs = this.spec.rebootSeconds * 1000 * this.timeScale;
    const started = Date.parse(this.boot.rebootStartedAt ?? '') || this.now().getTime();
    const delayMs = Math.max(0, started + rebootMs - this.now().getTime());
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.track(this.completeBoot()).catch((error: unknown) =>
        this.log(`${this.spec.name}: boot failed to complete: ${(error as Error).stack ?? String(error)}`),
      );
    }, delayMs);
  }

  private async completeBoot(): Promise<void> {
    const now = this.now();
    // WUA's side of the boot first (pending reboots done), then the host answers again.
    await completeReboot(this.hostDir, now);
    const servicingMs = SERVICING_AFTER_BOOT_SECONDS * 1000 * this.timeScale;
    const bootId = nextBootId(this.boot.bootId, now);
    const next = {
      ...this.boot,
      bootId,
      bootCount: this.boot.bootCount + 1,
      state: 'up' as const,
      rebootStartedAt: null,
      servicingUntil: new Date(Date.parse(bootId) + servicingMs).toISOString(),
    };
    // On disk first, then in memory: the host must not answer with a boot id that boot.json (what a
    // restarted daemon, and fetchLog, rely on) does not hold yet.
    await writeBootFile(this.hostDir, next);
    this.boot = next;
    this.log(`${this.spec.name}: up again, boot ${this.boot.bootCount} (${bootId})`);
    this.onState(this.spec.name, 'up');
  }

  private persist(): Promise<void> {
    return this.track(writeBootFile(this.hostDir, this.boot));
  }

  private track<T>(work: Promise<T>): Promise<T> {
    const previous = this.inFlight;
    this.inFlight = Promise.allSettled([previous, work]);
    return work;
  }

  /** Settles once every boot.json write and boot completion started so far has ended. */
  async settled(): Promise<void> {
    let current: Promise<unknown>;
    do {
      current = this.inFlight;
      await current;
    } while (current !== this.inFlight);
  }

  stopTimers(): void {
    clearTimeout(this.timer);
  }
}

interface DaemonFile {
  readonly url: string;
  readonly token: string;
  readonly pid: number;
  readonly dir: string;
  readonly scenarioPath: string;
  readonly mode: LabDaemonMode;
  readonly startedAt: string;
}

export async function readDaemonFile(dir: string): Promise<DaemonFile | null> {
  try {
    return JSON.parse(await readFile(join(dir, DAEMON_FILE), 'utf8')) as DaemonFile;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (error instanceof SyntaxError) return null; // half-written by a crashed daemon: start afresh
    throw error;
  }
}

async function writeDaemonFile(dir: string, value: DaemonFile): Promise<void> {
  const path = join(dir, DAEMON_FILE);
  await writeJsonAtomic(path, value);
  const { chmod } = await import('node:fs/promises');
  await chmod(path, 0o600);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : (JSON.parse(text) as unknown);
}

function bearer(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : null;
}

function sameSecret(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function isCycleRequest(value: unknown): value is CycleRequest {
  const v = value as Partial<CycleRequest> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.runId === 'string' &&
    typeof v.host === 'string' &&
    typeof v.cycle === 'number' &&
    typeof v.mode === 'string'
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Does the daemon described by a daemon.json answer its health check? */
async function answers(file: DaemonFile): Promise<boolean> {
  try {
    const response = await fetch(`${file.url}/health`, {
      headers: { authorization: `Bearer ${file.token}` },
      signal: AbortSignal.timeout(HEALTH_CHECK_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.status === 200;
  } catch (error) {
    // Refused or silent: a stale daemon.json left by a daemon that died. Anything else is a bug.
    if (isUnanswered(error)) return false;
    throw error;
  }
}

/**
 * What `fetch` raises when nobody answers properly: refused, reset or timed out (TypeError "fetch
 * failed" with the socket error as cause, or an AbortSignal timeout), or a body that is not JSON.
 */
export function isUnanswered(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof SyntaxError) return true;
  return error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/**
 * Pending connections the daemon's socket queues while its event loop is busy. Node's default is
 * 511; a lab of 500 hosts patched at once (all in lock-step) opens more than that in a burst —
 * payload downloads, reboot requests, the engine's probes — and every connection the kernel drops
 * then waits for the client's SYN retries (1 s, 3 s, 7 s, 15 s …): reboot requests took 20–45 s
 * and timed out after 30 s (TcpExt ListenOverflows grew by thousands). The kernel caps it at
 * net.core.somaxconn (4096 on current Linux).
 */
export const LAB_LISTEN_BACKLOG = 4096;

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen({ port, host: '127.0.0.1', backlog: LAB_LISTEN_BACKLOG }, () => {
      server.off('error', onError);
      resolvePromise((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Starts the daemon for `scenarioPath` on `dir` (hosts in `dir/hosts/<name>`).
 *
 * @example
 *   const lab = await startLabDaemon({ scenarioPath: 'examples/lab/patch-night.yaml', dir, mode: 'process' });
 *   await fetch(`${lab.url}/hosts/web01/status`, { headers: { authorization: `Bearer ${lab.token}` } });
 *   await lab.close();
 */
export async function startLabDaemon(options: StartLabDaemonOptions): Promise<LabDaemon> {
  const dir = resolve(options.dir);
  const scenarioPath = resolve(options.scenarioPath);
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);
  const scenario: Scenario = await loadScenario(scenarioPath);
  const previous = await readDaemonFile(dir);
  if (previous !== null && previous.pid !== process.pid && processAlive(previous.pid) && (await answers(previous))) {
    // Two daemons on one DIR would run every host twice.
    throw usageError(
      'LAB_DIR_IN_USE',
      `a lab daemon (pid ${previous.pid}) already serves ${dir} at ${previous.url}; use it, another directory, or stop it with "patchline lab daemon --stop --dir ${dir}"`,
      { context: { dir, pid: previous.pid } },
    );
  }
  // Reuse the previous token (and port, below) so agents a crashed daemon left running can
  // still reach their host's control URL.
  const token = previous?.token ?? randomBytes(32).toString('hex');

  const server = createServer();
  let port: number;
  try {
    const previousPort = previous === null ? 0 : Number(new URL(previous.url).port) || 0;
    port = await listen(server, options.port ?? previousPort);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || options.port !== undefined) throw error;
    port = await listen(server, 0);
  }
  const url = `http://127.0.0.1:${port}`;

  const payloads = createPayloadStore(scenario);
  let bundle: Promise<CliCommand> | undefined;
  const cli = (): Promise<CliCommand> => (bundle ??= ensureBundle(dir, log));
  const launcher: Launcher =
    options.mode === 'process'
      ? createProcessLauncher({ scenarioPath, upstreamUrl: url, cli })
      : createInProcessLauncher({ scenario, upstreamUrl: url, payloads, log });

  let lastActivityMs = Date.now();
  const hosts = new Map<string, VirtualHost>();
  // Host dirs are created (or read back) a batch at a time: 500 hosts start in a second, not ten.
  const boots = new Map<string, BootInfo>();
  for (let i = 0; i < scenario.hosts.length; i += HOST_INIT_BATCH) {
    await Promise.all(
      scenario.hosts.slice(i, i + HOST_INIT_BATCH).map(async (spec) => {
        const hostDir = join(dir, 'hosts', spec.name);
        await initHostDir(hostDir, spec, now(), scenario.timeScale);
        boots.set(spec.name, (await readBootFile(hostDir)) as BootInfo);
      }),
    );
  }
  for (const spec of scenario.hosts) {
    const hostDir = join(dir, 'hosts', spec.name);
    const boot = boots.get(spec.name) as BootInfo;
    const launchHost: LaunchHost = {
      name: spec.name,
      hostDir,
      controlUrl: `${url}/hosts/${encodeURIComponent(spec.name)}`,
      controlToken: hostControlToken(token, spec.name),
    };
    const scheduler = new TaskScheduler({
      host: launchHost,
      labDir: dir,
      launcher,
      ...(spec.faults.launchFails === null ? {} : { launchFailsHResult: spec.faults.launchFails }),
      onChange: () => {
        lastActivityMs = Date.now();
      },
    });
    const host = new VirtualHost(spec, hostDir, scheduler, boot, scenario.timeScale, now, log, options.onHostState);
    host.resume();
    hosts.set(spec.name, host);
  }

  let closing: Promise<void> | undefined;
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(idleTimer);
      for (const host of hosts.values()) host.stopTimers();
      // The lab is powered off: everything the hosts run stops with it.
      await Promise.all([...hosts.values()].map((h) => h.killAll()));
      // In-process agents outlive their kill for a moment (the provider writes state.json, the
      // agent ends its hand-over); boot.json writes may be under way. Both end before close does.
      await Promise.all([launcher.drain?.(KILL_WAIT_MS), ...[...hosts.values()].map((h) => h.settled())]);
      log(POWERED_OFF_NOTE);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      // A bundle build still writing into DIR must finish before anyone removes DIR.
      await bundle?.catch(() => undefined);
      const current = await readDaemonFile(dir);
      if (current?.pid === process.pid && current.url === url) await rm(join(dir, DAEMON_FILE), { force: true });
      log('lab daemon stopped');
      resolveClosed();
    })();
    return closing;
  };

  const idleMs = options.idleShutdownMs ?? DEFAULT_IDLE_SHUTDOWN_MS;
  const idleTimer = setInterval(
    () => {
      if (idleMs <= 0) return;
      const busy = [...hosts.values()].some((h) => h.scheduler.runningCount() > 0);
      if (busy) lastActivityMs = Date.now();
      else if (Date.now() - lastActivityMs >= idleMs) {
        log(`no host API call for ${Math.round(idleMs / 1000)} s: stopping`);
        void close();
      }
    },
    Math.max(50, Math.min(30_000, Math.floor(idleMs / 4) || 30_000)),
  );

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      log(`${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}`);
      if (!res.headersSent) sendJson(res, 500, { message: (error as Error).message });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? '/', url);
    const parts = parsed.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    const method = req.method ?? 'GET';
    if (parts[0] !== 'hosts' && parts[0] !== 'shutdown' && parts[0] !== 'health') {
      // The fake upstream: public, like Microsoft's download servers.
      if (payloads.handle(req, res)) return;
      sendJson(res, 404, { message: 'not found' });
      return;
    }
    const presented = bearer(req);
    const name = parts[1];
    const host = name === undefined ? undefined : hosts.get(name);
    const controlAllowed =
      host !== undefined &&
      parts.length === 3 &&
      (parts[2] === 'reboot' || parts[2] === 'status') &&
      sameSecret(presented, hostControlToken(token, host.spec.name));
    if (!sameSecret(presented, token) && !controlAllowed) {
      sendJson(res, 401, {
        message: `send "authorization: Bearer <token>" with the token from ${join(dir, DAEMON_FILE)}`,
      });
      return;
    }
    lastActivityMs = Date.now();

    if (parts[0] === 'health' && method === 'GET')
      return sendJson(res, 200, { ok: true, pid: process.pid, dir, scenarioPath, mode: options.mode });
    if (parts[0] === 'shutdown' && method === 'POST') {
      sendJson(res, 202, { stopping: true });
      res.once('finish', () => void close());
      return;
    }
    if (parts.length === 1 && method === 'GET') return sendJson(res, 200, { hosts: [...hosts.keys()] });
    if (host === undefined) return sendJson(res, 404, { message: `unknown host ${name ?? ''}` });

    const [, , action, taskId, taskAction] = parts;
    if (action === 'status' && parts.length === 3 && method === 'GET') {
      const status = host.status();
      return sendJson(res, status.reachable ? 200 : 503, status);
    }
    if (action === 'reboot' && parts.length === 3 && method === 'POST') {
      const reboot = host.beginReboot();
      if (reboot === null) return sendJson(res, 503, { reachable: false });
      sendJson(res, 202, { rebooting: true });
      // Answer first (the caller may be an agent on this very host), then the host goes down.
      res.once(
        'finish',
        () =>
          void reboot
            .killTasks()
            .catch((error: unknown) => log(`${host.spec.name}: reboot: ${(error as Error).message}`)),
      );
      return;
    }
    if (action === 'tasks') {
      if (host.state !== 'up') return sendJson(res, 503, { reachable: false });
      if (parts.length === 3 && method === 'POST') {
        const body = (await readJsonBody(req)) as { request?: unknown };
        if (!isCycleRequest(body.request))
          return sendJson(res, 400, { message: 'body must be {"request": CycleRequest}' });
        if (body.request.host !== host.spec.name)
          return sendJson(res, 400, { message: `request.host is ${body.request.host}, not ${host.spec.name}` });
        try {
          const started = await host.scheduler.runNow(body.request);
          return sendJson(res, 201, started);
        } catch (error) {
          if (error instanceof SchedulerRefusedError)
            return sendJson(res, 409, { hresult: error.hresult, message: error.message });
          throw error;
        }
      }
      if (taskId !== undefined && parts.length === 4 && method === 'GET') {
        let running = host.scheduler.isRunning(taskId);
        // A task a previous daemon started (it crashed and we were restarted): ask the OS.
        const pid = Number(parsed.searchParams.get('pid'));
        if (running === undefined)
          running = launcher.mode === 'process' && Number.isInteger(pid) && pid > 0 && processAlive(pid);
        return sendJson(res, 200, { running });
      }
      if (taskId !== undefined && taskAction === 'stop' && method === 'POST') {
        return host.scheduler.stop(taskId)
          ? sendJson(res, 200, { stopping: true })
          : sendJson(res, 404, { message: `no running task ${taskId}` });
      }
    }
    sendJson(res, 404, { message: `no route ${method} ${parsed.pathname}` });
  }

  await writeDaemonFile(dir, {
    url,
    token,
    pid: process.pid,
    dir,
    scenarioPath,
    mode: options.mode,
    startedAt: now().toISOString(),
  });
  log(`lab daemon for ${scenarioPath} (${hosts.size} hosts, ${options.mode}) listening on ${url}`);
  if (options.mode === 'process') {
    // Build the agents' bundle now, so the first launch does not pay for it.
    void cli().catch((error: unknown) => log(`bundle: ${(error as Error).message}`));
  }

  return { url, token, dir, closed, hostDir: (name) => join(dir, 'hosts', name), close };
}
