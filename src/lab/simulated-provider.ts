/**
 * The simulated WUA provider: one virtual host's Windows Update, speaking src/wua/protocol.ts.
 *
 * `serveProvider` reads requests (JSON lines) from `input` and writes `hello`, progress, warnings
 * and one result per request to `output`, exactly as the PowerShell provider does on Windows.
 * Requests run one at a time in arrival order (WUA serialises its jobs); `abort` is answered at
 * once and stops the running download/install; `rebootStatus` and `history` only read, so they
 * are answered at once too (and see the installer busy while an install runs). The host's state
 * is re-read from disk at the start of each request (the daemon may have completed a reboot in
 * between) and written atomically after every change.
 *
 * The operations themselves live in provider-operations.ts; this file owns the session.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  parseRequest,
  type ProviderEvent,
  type ProviderRequest,
  type ProviderResult,
} from '../wua/protocol.ts';
import { initHostDir } from './host-state.ts';
import { createPayloadStore, type PayloadStore } from './payloads.ts';
import type { Clock } from '../domain/clock.ts';
import { scenarioHost, type Scenario } from './scenario.ts';
import { createOperations, failedResult, type Operations } from './provider-operations.ts';
import { HR } from './wua-codes.ts';

export const LAB_PROVIDER_NAME = 'lab';
export const LAB_PROVIDER_VERSION = '0.1.0';

/** Time as the provider sees it (the Clock every part shares); tests and large labs may pass their own. */
export type ProviderClock = Clock;

export const systemClock: ProviderClock = {
  now: () => new Date(),
  sleep: async (ms, signal) => {
    await delay(ms, undefined, { signal });
  },
};

export interface ProviderContext {
  readonly scenario: Scenario;
  readonly hostName: string;
  /** `<lab dir>/hosts/<name>`: state.json and boot.json live here. */
  readonly hostDir: string;
  /** Base URL of the fake upstream serving the payloads, e.g. http://127.0.0.1:8080. */
  readonly upstreamUrl: string;
  readonly clock?: ProviderClock;
  /** Stops the provider: the running operation is aborted and serveProvider resolves. */
  readonly signal?: AbortSignal;
  /** Share one store between the hosts of an in-process lab (digests are computed once). */
  readonly payloads?: PayloadStore;
  /** The HTTP client for downloads (default: the global fetch). */
  readonly fetch?: typeof fetch;
}

const REQUEST_TYPES: readonly string[] = [
  'search',
  'download',
  'install',
  'rebootStatus',
  'history',
  'hide',
  'unhide',
  'copyToCache',
  'abort',
];
/** Requests that only read state: answered at once, even while an install runs. */
const IMMEDIATE: ReadonlySet<string> = new Set(['rebootStatus', 'history']);

interface Running {
  readonly id: string;
  readonly controller: AbortController;
}

/**
 * Serves one provider session until `input` ends (or `ctx.signal` aborts), then resolves once
 * the last result is written.
 *
 * @example
 *   await serveProvider(process.stdin, process.stdout, { scenario, hostName: 'web01', hostDir, upstreamUrl });
 */
export async function serveProvider(input: Readable, output: Writable, ctx: ProviderContext): Promise<void> {
  const clock = ctx.clock ?? systemClock;
  const host = scenarioHost(ctx.scenario, ctx.hostName);
  await initHostDir(ctx.hostDir, host, clock.now(), ctx.scenario.timeScale);

  const emit = (event: ProviderEvent): void => {
    if (!output.writableEnded && !output.destroyed) output.write(`${JSON.stringify(event)}\n`);
  };
  const ops: Operations = createOperations({
    scenario: ctx.scenario,
    host,
    hostDir: ctx.hostDir,
    upstreamUrl: ctx.upstreamUrl,
    clock,
    payloads: ctx.payloads ?? createPayloadStore(ctx.scenario),
    fetch: ctx.fetch ?? fetch,
    emit,
  });

  emit({
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    provider: LAB_PROVIDER_NAME,
    version: LAB_PROVIDER_VERSION,
    computerName: ctx.hostName,
  });

  let running: Running | null = null;
  /** Queued or running, by request id (what `abort` may target). */
  const pendingIds = new Set<string>();
  /** Queued requests aborted before they started. */
  const cancelled = new Set<string>();
  let queue: Promise<void> = Promise.resolve();
  const immediate = new Set<Promise<void>>();

  const run = async (request: ProviderRequest, signal: AbortSignal): Promise<ProviderResult> => {
    try {
      return await ops.handle(request, signal);
    } catch (error) {
      // A bug or an I/O failure (disk full): report it on this request instead of dying.
      return failedResult(request, HR.E_FAIL, `lab provider error: ${(error as Error).message}`);
    }
  };

  const enqueue = (request: ProviderRequest): void => {
    pendingIds.add(request.id);
    queue = queue.then(async () => {
      const controller = new AbortController();
      if (cancelled.delete(request.id) || ctx.signal?.aborted) controller.abort();
      running = { id: request.id, controller };
      const result = await run(request, controller.signal);
      // Forget the request before answering: a reader may react to the result at once.
      running = null;
      pendingIds.delete(request.id);
      emit(result);
    });
  };

  const abort = (request: Extract<ProviderRequest, { type: 'abort' }>): void => {
    let aborted = false;
    if (running?.id === request.targetId) {
      running.controller.abort();
      aborted = true;
    } else if (pendingIds.has(request.targetId)) {
      cancelled.add(request.targetId);
      aborted = true;
    }
    emit({
      type: 'result',
      requestId: request.id,
      request: 'abort',
      resultCode: 'succeeded',
      hresult: null,
      data: { aborted },
    });
  };

  const onLine = (line: string): void => {
    if (line.trim() === '') return;
    let request: ProviderRequest;
    try {
      request = parseRequest(line);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      rejectLine(line, error, emit);
      return;
    }
    if (request.type === 'abort') return abort(request);
    if (IMMEDIATE.has(request.type)) {
      const p: Promise<void> = run(request, new AbortController().signal)
        .then(emit)
        .finally(() => immediate.delete(p));
      immediate.add(p);
      return;
    }
    enqueue(request);
  };

  const lines = createInterface({ input, crlfDelay: Infinity });
  const closed = new Promise<void>((resolve) => lines.once('close', resolve));
  const onStop = () => {
    running?.controller.abort();
    for (const id of pendingIds) cancelled.add(id);
    lines.close();
  };
  // The agent went away (EPIPE) or stdin broke: nobody can read results, so stop like an abort.
  output.on('error', onStop);
  lines.on('error', onStop);
  ctx.signal?.addEventListener('abort', onStop, { once: true });
  if (ctx.signal?.aborted) onStop();
  try {
    lines.on('line', onLine);
    await closed;
    await queue;
    await Promise.all(immediate);
  } finally {
    ctx.signal?.removeEventListener('abort', onStop);
    output.off('error', onStop);
  }
}

/** A line that is not a valid request: a failed result when we can tell which request, else a warning. */
function rejectLine(line: string, error: ProtocolError, emit: (e: ProviderEvent) => void): void {
  let id: unknown;
  let type: unknown;
  try {
    ({ id, type } = JSON.parse(line) as { id?: unknown; type?: unknown });
  } catch {
    // Not JSON at all: nothing to answer, only warn.
    id = undefined;
  }
  if (typeof id === 'string' && id !== '' && typeof type === 'string' && REQUEST_TYPES.includes(type)) {
    emit(failedResult({ id, type } as ProviderRequest, HR.E_INVALIDARG, error.message));
  } else {
    emit({ type: 'warning', hresult: HR.E_INVALIDARG, message: error.message });
  }
}
