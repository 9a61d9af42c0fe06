/**
 * The HTTP callback sink (docs/internals.md §3): streams the cycle's events to the connector as
 * they happen, in NDJSON batches, with the cycle's one-time bearer token; tracks the connector's
 * `ackSeq` and resends what it has not acknowledged, with capped, jittered backoff.
 *
 * Retry table:
 *   network error, timeout, 408, 425, 429, 5xx  → retry (backoff 0.5 s doubling to 30 s, jittered)
 *   401, 403, 410, any other 4xx                → stop streaming; the log goes over the pipe/file
 * The token is sent only in the authorization header and never appears in any message.
 */
import type { AgentEvent } from '../../domain/agent-log.ts';
import type { EventSink } from '../event-log.ts';

/** Events per POST: a scan-result with hundreds of updates is large; keep bodies well under 10 MB. */
export const MAX_BATCH_EVENTS = 200;
/** One POST may take this long (a connector under load, a slow WAN link). */
export const POST_TIMEOUT_MS = 15_000;
export const RETRY_FIRST_MS = 500;
/** Longest pause between attempts: the connector notices a lost stream well before this matters. */
export const RETRY_MAX_MS = 30_000;

const RETRIED_STATUSES = new Set([408, 425, 429]);

export interface HttpSinkOptions {
  readonly url: string;
  readonly token: string;
  readonly fetch?: typeof fetch;
  readonly random?: () => number;
  /** Diagnostics (stderr in the CLI): retries, stop reasons. Never given the token. */
  readonly report?: (message: string) => void;
}

type PostOutcome =
  | { readonly kind: 'ack'; readonly ackSeq: number }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'stop'; readonly reason: string };

/** Backoff before retry `attempt` (0-based): capped doubling, half of it jittered. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const capped = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
  return Math.round(capped / 2 + (capped / 2) * random());
}

/**
 * @example
 *   const http = new HttpCallbackSink({ url, token });
 *   const log = new EventLog([http], clock.now);
 *   …
 *   await http.waitForAck(log.lastSeq(), signal); // true: the connector has the whole log
 */
export class HttpCallbackSink implements EventSink {
  private queue: AgentEvent[] = [];
  private acked = 0;
  private stopped: string | null = null;
  private pumping = false;
  private readonly closer = new AbortController();
  private readonly waiters = new Set<() => void>();
  private readonly fetch: typeof fetch;
  private readonly random: () => number;
  private readonly report: (message: string) => void;

  constructor(private readonly options: HttpSinkOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.random = options.random ?? Math.random;
    this.report = options.report ?? (() => undefined);
  }

  /** The highest seq the connector acknowledged (every seq ≤ it was received). */
  get ackSeq(): number {
    return this.acked;
  }

  /** Why streaming stopped (401, 410, closed …), or null while streaming. */
  get stopReason(): string | null {
    return this.stopped;
  }

  write(event: AgentEvent): void {
    if (this.stopped) return;
    this.queue.push(event);
    void this.pump();
  }

  /**
   * Resolves true once the connector acknowledged `seq`, false as soon as streaming stopped or
   * the signal aborted (the caller then relies on the pipe or the file).
   */
  waitForAck(seq: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.acked >= seq) done(true);
        else if (this.stopped || signal.aborted) done(false);
      };
      const done = (value: boolean): void => {
        this.waiters.delete(check);
        signal.removeEventListener('abort', check);
        resolve(value);
      };
      this.waiters.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  }

  /** Stops streaming at once (an in-flight POST is aborted). Idempotent. */
  close(): void {
    this.stop('closed');
    this.closer.abort();
  }

  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.queue = [];
    this.notify();
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    let attempt = 0;
    try {
      // Let a burst of events emitted together (scan-result, loop-detected …) go in one POST.
      await new Promise((resolve) => setImmediate(resolve));
      while (!this.stopped && this.queue.length > 0) {
        const batch = this.queue.slice(0, MAX_BATCH_EVENTS);
        const outcome = await this.post(batch);
        if (outcome.kind === 'stop') {
          this.report(`live events: ${outcome.reason}; stopped streaming, the log will be handed over at the end`);
          this.stop(outcome.reason);
          break;
        }
        const before = this.acked;
        if (outcome.kind === 'ack') {
          this.acked = Math.max(this.acked, outcome.ackSeq);
          this.queue = this.queue.filter((e) => e.seq > this.acked);
          this.notify();
          if (this.acked > before || this.acked >= (batch.at(-1)?.seq ?? 0)) {
            attempt = 0;
            continue;
          }
          // The connector acknowledged nothing new: back off rather than resend in a hot loop.
        } else if (attempt === 0) {
          this.report(`live events: ${outcome.reason}; retrying`);
        }
        await this.pause(retryDelayMs(attempt++, this.random));
      }
    } finally {
      this.pumping = false;
    }
    // Events written while the last POST was finishing.
    if (!this.stopped && this.queue.length > 0) void this.pump();
  }

  private async post(batch: readonly AgentEvent[]): Promise<PostOutcome> {
    let response: Response;
    try {
      response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.token}`, 'content-type': 'application/x-ndjson' },
        body: batch.map((e) => JSON.stringify(e)).join('\n') + '\n',
        signal: AbortSignal.any([this.closer.signal, AbortSignal.timeout(POST_TIMEOUT_MS)]),
      });
    } catch (error) {
      if (this.closer.signal.aborted) return { kind: 'stop', reason: 'closed' };
      return { kind: 'retry', reason: `could not reach ${redactedUrl(this.options.url)} (${describe(error)})` };
    }
    const text = await response.text().catch((error: unknown) => `<unreadable body: ${describe(error)}>`);
    if (response.status === 200) {
      const ackSeq = parseAck(text);
      return ackSeq === null
        ? { kind: 'retry', reason: `the connector answered 200 without a valid {"ackSeq": N}: ${text.slice(0, 100)}` }
        : { kind: 'ack', ackSeq };
    }
    if (response.status >= 500 || RETRIED_STATUSES.has(response.status))
      return { kind: 'retry', reason: `the connector answered ${response.status}` };
    const why =
      response.status === 401
        ? 'the connector refused the token (401)'
        : response.status === 410
          ? 'the connector no longer expects this cycle (410)'
          : `the connector answered ${response.status}`;
    return { kind: 'stop', reason: why };
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.closer.signal.addEventListener('abort', done, { once: true });
    });
  }
}

function parseAck(text: string): number | null {
  try {
    const value = JSON.parse(text) as { ackSeq?: unknown };
    return typeof value.ackSeq === 'number' && Number.isInteger(value.ackSeq) && value.ackSeq >= 0
      ? value.ackSeq
      : null;
  } catch {
    return null;
  }
}

/** The URL without query or credentials, for messages. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid callback url>';
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}
