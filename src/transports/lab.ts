/**
 * The lab transport: reaches virtual Windows hosts through the lab daemon's HTTP API (one daemon
 * serves every host of a scenario on 127.0.0.1, see src/lab/daemon.ts and docs/internals.md §7).
 *
 * It knows nothing about how the daemon is started: the caller hands it a `LabDaemonConnection`
 * (src/lab/daemon-main.ts `openLabTransport` composes both), which keeps the import direction
 * transports → domain. Every call has a short timeout; probe never throws for a host that is down.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';
import { EXIT, PatchlineError, usageError } from '../domain/errors.ts';
import {
  LaunchRefusedError,
  TransportError,
  transportFailureOf,
  type HostStatus,
  type LaunchResult,
  type Transport,
} from './transport.ts';

/** A status or task call: the daemon answers at once, even for a host that is rebooting. */
const CALL_TIMEOUT_MS = 5_000;
/**
 * A launch answers once the agent runs; the very first one of a daemon may wait for the agents'
 * bundle to be built (seconds on a loaded machine), like a cold Task Scheduler on Windows.
 */
const LAUNCH_TIMEOUT_MS = 60_000;
/** A probe is answered quickly or the host counts as unreachable this time round. */
const PROBE_TIMEOUT_MS = 2_000;
/** Reading a whole log from the agent's socket (a few MB at most). */
const FETCH_LOG_TIMEOUT_MS = 10_000;
/** How many known names an UNKNOWN_HOST error lists. */
const KNOWN_HOSTS_SHOWN = 5;

export interface LabDaemonEndpoint {
  readonly url: string;
  readonly token: string;
}

/** How the transport gets hold of a running daemon, and lets go of it. */
export interface LabDaemonConnection {
  /** Starts or finds the daemon; called once, lazily, on the first call that needs it. */
  connect(signal?: AbortSignal): Promise<LabDaemonEndpoint>;
  /** Stops an in-process daemon; leaves a detached one running (it idles out on its own). */
  close(): Promise<void>;
}

export interface LabTransportOptions {
  /** The lab's DIR: hosts live in `DIR/hosts/<name>`. */
  readonly dir: string;
  readonly daemon: LabDaemonConnection;
}

/**
 * The socket path an agent serves its log on: short (Linux allows ~107 bytes) and deterministic,
 * so the task scheduler that sets it and fetchLog that reads it agree without storing it.
 */
export function labPipePath(labDir: string, runId: string, host: string, cycle: number): string {
  const hash = createHash('sha256')
    .update(`${resolve(labDir)}\0${runId}\0${host}\0${cycle}`)
    .digest('hex')
    .slice(0, 20);
  return join(tmpdir(), `pl-${hash}.sock`);
}

/** The file the agent leaves its log in when nobody took it (docs/internals.md §4). */
export function labLogFallbackPath(labDir: string, request: Pick<CycleRequest, 'runId' | 'host' | 'cycle'>): string {
  // Same name as the agent's fallbackLogPath (characters no file system accepts become `_`).
  const safe = (s: string): string => s.replace(/[/\\:*?"<>|]/g, '_');
  return join(
    labDir,
    'hosts',
    request.host,
    'logs',
    `${safe(request.runId)}-${safe(request.host)}-${request.cycle}.jsonl`,
  );
}

export function parseNdjsonEvents(text: string): AgentEvent[] {
  const events: AgentEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    events.push(JSON.parse(line) as AgentEvent);
  }
  return events;
}

/** Reads a Unix socket to EOF; null when nobody listens there (the agent is gone). */
function readSocket(path: string, signal: AbortSignal): Promise<string | null> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(path);
    const onAbort = () => socket.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolvePromise(Buffer.concat(chunks).toString('utf8'));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolvePromise(null);
      else reject(error);
    });
  });
}

function unreachable(): HostStatus {
  return { reachable: false, bootId: null, servicingIdle: false };
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  return signal ? AbortSignal.any([signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
}

/**
 * A Transport over the lab daemon.
 *
 * @example
 *   const transport = createLabTransport({ dir, daemon: { connect: async () => ({ url, token }), close: async () => {} } });
 *   const status = await transport.probe('web01', signal); // { reachable, bootId, servicingIdle }
 */
/** The offline catalog's name on a lab host's disk. */
export const LAB_OFFLINE_CAB_FILE = 'wsusscn2.cab';
const LAB_ROOT_SUFFIX = '.root.pem';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Puts `source` at `target` unless already there (same size+mtime): hard link, else a copy keeping the mtime; temp name + rename. */
async function placeFile(source: string, target: string): Promise<void> {
  const from = await stat(source);
  const to = (await exists(target)) ? await stat(target) : null;
  if (to && to.size === from.size && to.mtimeMs === from.mtimeMs) return;
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    try {
      await link(source, tmp);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw error;
      await copyFile(source, tmp);
      await utimes(tmp, from.atime, from.mtime);
    }
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The socket error code under fetch's "fetch failed" (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET…). */
function socketErrorCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The daemon reset or closed the connection before any answer (not: refused, timed out). */
function isConnectionReset(error: unknown): boolean {
  const code = socketErrorCode(error);
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE';
}

export function createLabTransport(options: LabTransportOptions): Transport {
  let endpoint: Promise<LabDaemonEndpoint> | undefined;
  // Shared by concurrent calls, so one caller's cancel must not cancel it: connect is bounded itself.
  const getEndpoint = (): Promise<LabDaemonEndpoint> => {
    endpoint ??= options.daemon.connect().catch((error: unknown) => {
      endpoint = undefined; // let the next call try again
      throw error;
    });
    return endpoint;
  };

  /**
   * One call to the daemon, bounded by `timeoutMs`; `signal` is the caller's cancel. A daemon that
   * refuses connections is forgotten, so the next call finds (or starts) it again: a detached
   * daemon that idled out or died comes back with its hosts as they were on disk.
   */
  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const { url, token } = await getEndpoint();
    const send = () =>
      fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: withTimeout(signal, timeoutMs),
      });
    let response: Response;
    try {
      try {
        response = await send();
      } catch (error) {
        // A kept-alive connection the daemon closed for idleness just as the request went out
        // (this process's event loop stalled past the daemon's 5 s): the daemon never read the
        // request, so it is sent once more, on a new connection.
        if (!isConnectionReset(error) || signal?.aborted) throw error;
        response = await send();
      }
    } catch (error) {
      signal?.throwIfAborted();
      const timedOut = (error as Error).name === 'TimeoutError';
      // Only nobody listening means the daemon is gone (idled out, died): the next call finds or
      // starts it again. A live daemon that reset a connection is kept: looking for it again with
      // a 2 s health check in a stalled process would start a second daemon, which refuses to
      // serve the same DIR (LAB_DIR_IN_USE, exit 70 for the run).
      const gone = !timedOut && socketErrorCode(error) === 'ECONNREFUSED';
      if (gone) endpoint = undefined;
      throw new PatchlineError(
        'LAB_DAEMON_UNREACHABLE',
        `the lab daemon at ${url} ${timedOut ? `did not answer ${method} ${path} within ${timeoutMs} ms` : gone ? `refused ${method} ${path}; the next call finds or starts it again` : `dropped the connection of ${method} ${path} (${socketErrorCode(error) ?? (error as Error).message})`} (see ${join(options.dir, 'daemon.log')})`,
        { cause: error, exitCode: EXIT.UNREACHABLE, context: { path } },
      );
    }
    const text = await response.text();
    let json: Record<string, unknown> = {};
    if (text !== '') {
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch (error) {
        throw new PatchlineError(
          'LAB_DAEMON_PROTOCOL',
          `the lab daemon answered ${method} ${path} with something that is not JSON; restart it with "patchline lab daemon"`,
          { cause: error, context: { path } },
        );
      }
    }
    if (response.status === 401) {
      throw new PatchlineError(
        'LAB_DAEMON_AUTH',
        `the lab daemon refused our token; another daemon may serve ${options.dir}: stop it and retry`,
        { context: { path } },
      );
    }
    return { status: response.status, json };
  }

  const hostPath = (host: string) => `/hosts/${encodeURIComponent(host)}`;

  async function listTargets(): Promise<readonly string[]> {
    const { status, json } = await call('GET', '/hosts', undefined, undefined, CALL_TIMEOUT_MS);
    if (status !== 200 || !Array.isArray(json.hosts))
      throw new PatchlineError('LAB_DAEMON_PROTOCOL', `the lab daemon did not list its hosts (HTTP ${status})`);
    return json.hosts as string[];
  }

  function hostDown(host: string, what: string): PatchlineError {
    return new TransportError('unreachable', host, `${host} does not answer (${what}); it is rebooting or down`);
  }

  return {
    name: 'lab',
    listTargets,

    async resolveTargets(names) {
      const known = await listTargets();
      const knownSet = new Set(known);
      const unknown = names.filter((n) => !knownSet.has(n));
      if (unknown.length > 0) {
        const shown = known.slice(0, KNOWN_HOSTS_SHOWN).join(', ');
        const more = known.length > KNOWN_HOSTS_SHOWN ? `, … (${known.length} in all)` : '';
        throw usageError(
          'UNKNOWN_HOST',
          `unknown host${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: not in the lab scenario. Known hosts: ${shown}${more}. Check the names or the scenario file.`,
          { context: { hosts: unknown.join(',') } },
        );
      }
      return [...new Set(names)];
    },

    async prepare(host, input, signal) {
      // An offline cab goes onto the host's own disk, as on Windows, where WUA running as SYSTEM cannot
      // read a scan package on a UNC path (Kerberos double hop): DIR/hosts/<name>/, with its lab root.
      if (input.offlineCabSource === undefined) return {};
      signal.throwIfAborted();
      const source = resolve(input.offlineCabSource);
      const hostDir = join(options.dir, 'hosts', host);
      const target = join(hostDir, LAB_OFFLINE_CAB_FILE);
      try {
        await mkdir(hostDir, { recursive: true });
        await placeFile(source, target);
        if (await exists(`${source}${LAB_ROOT_SUFFIX}`))
          await placeFile(`${source}${LAB_ROOT_SUFFIX}`, `${target}${LAB_ROOT_SUFFIX}`);
      } catch (cause) {
        throw usageError(
          'OFFLINE_CAB_NOT_FOUND',
          `cannot put the offline catalog ${source} on ${host}: ${(cause as Error).message}. Give --offline-cab the path of a wsusscn2.cab (patchline lab catalog SCENARIO --out FILE makes one).`,
          { cause, context: { host, file: source } },
        );
      }
      return { offlineCabPath: target };
    },

    async launch(host, request, signal): Promise<LaunchResult> {
      const { status, json } = await call('POST', `${hostPath(host)}/tasks`, { request }, signal, LAUNCH_TIMEOUT_MS);
      if (status === 201 && typeof json.taskId === 'string' && typeof json.pid === 'number')
        return { taskId: json.taskId, pid: json.pid };
      if (status === 409) throw new LaunchRefusedError(host, String(json.hresult), String(json.message));
      if (status === 503) throw hostDown(host, 'launch');
      if (status === 404)
        throw usageError('UNKNOWN_HOST', `unknown host ${host}: not in the lab scenario`, { context: { host } });
      throw new PatchlineError(
        'LAB_DAEMON_PROTOCOL',
        `the lab daemon answered HTTP ${status} to a launch on ${host}: ${String(json.message ?? '')}`,
        { context: { host } },
      );
    },

    async probe(host, signal): Promise<HostStatus> {
      try {
        const { status, json } = await call('GET', `${hostPath(host)}/status`, undefined, signal, PROBE_TIMEOUT_MS);
        if (status !== 200 || json.reachable !== true) return unreachable();
        return {
          reachable: true,
          bootId: typeof json.bootId === 'string' ? json.bootId : null,
          servicingIdle: json.servicingIdle === true,
        };
      } catch (error) {
        // The caller's cancel is not "unreachable", nor is a daemon that answers garbage or refuses
        // our token (a fault to report, not a host to wait for); a refused or slow call is.
        signal.throwIfAborted();
        if (transportFailureOf(error) !== 'unreachable') throw error;
        return unreachable();
      }
    },

    async fetchLog(host, request, signal) {
      const pipePath = request.pipePath ?? labPipePath(options.dir, request.runId, host, request.cycle);
      const fromSocket = await readSocket(pipePath, withTimeout(signal, FETCH_LOG_TIMEOUT_MS));
      if (fromSocket !== null) return parseNdjsonEvents(fromSocket);
      try {
        return parseNdjsonEvents(await readFile(labLogFallbackPath(options.dir, { ...request, host }), 'utf8'));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },

    async isRunning(host, launch, signal) {
      const { status, json } = await call(
        'GET',
        `${hostPath(host)}/tasks/${encodeURIComponent(launch.taskId)}?pid=${launch.pid}`,
        undefined,
        signal,
        CALL_TIMEOUT_MS,
      );
      // A host that is rebooting or down runs nothing.
      if (status === 503) return false;
      return json.running === true;
    },

    async stop(host, launch) {
      const { status } = await call(
        'POST',
        `${hostPath(host)}/tasks/${encodeURIComponent(launch.taskId)}/stop`,
        {},
        undefined,
        CALL_TIMEOUT_MS,
      );
      // 404 (task unknown or ended) and 503 (host down) both mean nothing is left to stop.
      if (status !== 200 && status !== 404 && status !== 503)
        throw new PatchlineError(
          'LAB_DAEMON_PROTOCOL',
          `the lab daemon answered HTTP ${status} to stop ${launch.taskId} on ${host}`,
        );
    },

    async reboot(host) {
      const { status } = await call('POST', `${hostPath(host)}/reboot`, {}, undefined, CALL_TIMEOUT_MS);
      // 503: already rebooting or down; the caller's wait for a new boot id handles both.
      if (status !== 202 && status !== 503)
        throw new PatchlineError(
          'LAB_DAEMON_PROTOCOL',
          `the lab daemon answered HTTP ${status} to a reboot of ${host}`,
        );
    },

    async close() {
      await options.daemon.close();
    },
  };
}
