/**
 * Reading an agent's log file over SFTP by byte offset, and relaying it to the engine's callback.
 *
 * When a target cannot reach the connector (firewalls usually forbid it), the agent's events do
 * not arrive on the HTTP callback. The agent appends each event to its log file as it happens
 * (request.logFile); LogReader reads that file from the offset it reached — only complete lines —
 * so a dropped connection, or a reboot, costs nothing: the next read goes on from the same byte.
 * LogRelay polls a LogReader and posts what it read to the cycle's callback URL (on loopback, with
 * the cycle's token), so the engine takes the events exactly as if the agent had sent them.
 */
import type { AgentEvent } from '../../domain/agent-log.ts';

/** Read at most this much per poll (a scan result of a very out-of-date host is a few MB). */
const MAX_READ_BYTES = 4 * 1024 * 1024;

export type ReadChunk = (offset: number, maxBytes: number) => Promise<Buffer | null>;

export class LogReader {
  private offset = 0;
  private readonly events: AgentEvent[] = [];
  /** Bytes of a line whose end has not been written yet. */
  private partial = Buffer.alloc(0);
  private exists = false;

  /** Polls run one after another: two at once would read the same bytes twice. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly read: ReadChunk) {}

  /** Reads what was appended since the last call; returns only the new events. */
  poll(): Promise<readonly AgentEvent[]> {
    const next = this.queue.then(() => this.pollOnce());
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async pollOnce(): Promise<readonly AgentEvent[]> {
    const fresh: AgentEvent[] = [];
    for (;;) {
      const chunk = await this.read(this.offset + this.partial.length, MAX_READ_BYTES);
      if (chunk === null) return fresh;
      this.exists = true;
      if (chunk.length === 0) return fresh;
      const data = Buffer.concat([this.partial, chunk]);
      const end = data.lastIndexOf(0x0a);
      if (end < 0) {
        this.partial = data;
      } else {
        for (const line of data.subarray(0, end).toString('utf8').split('\n')) {
          const trimmed = line.trim();
          if (trimmed === '') continue;
          // Only our JSON lines: anything else (a runtime's message) is skipped, never fatal.
          if (!trimmed.startsWith('{')) continue;
          const event = JSON.parse(trimmed) as AgentEvent;
          this.events.push(event);
          fresh.push(event);
        }
        this.offset += end + 1;
        this.partial = data.subarray(end + 1);
      }
      if (chunk.length < MAX_READ_BYTES) return fresh;
    }
  }

  /** Everything read so far, oldest first; null when the file was never there. */
  all(): readonly AgentEvent[] | null {
    return this.exists ? this.events : null;
  }

  get bytesRead(): number {
    return this.offset;
  }
}

export interface RelayOptions {
  readonly reader: LogReader;
  readonly callback: { readonly url: string; readonly token: string };
  readonly pollMs: number;
  /** Told once per loss and once per recovery (the live log says the stream survived). */
  readonly note: (message: string) => void;
  readonly fetch?: typeof fetch;
}

/** Polls the log and posts new events to the callback until stopped or the engine says 410 (cycle over). */
export class LogRelay {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  /** The last post to the engine failed (said once, until one succeeds). */
  private posting = false;
  private lostAt = 0;
  private unsent: AgentEvent[] = [];
  readonly done: Promise<void>;
  private finish: () => void = () => undefined;

  constructor(private readonly options: RelayOptions) {
    this.done = new Promise<void>((resolve) => (this.finish = resolve));
    // What the reader read before the relay existed goes first: the launch reads the log to find
    // the agent's PID, and on a loaded target the agent may be many events in by then.
    this.unsent = [...(options.reader.all() ?? [])];
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    try {
      const fresh = await this.options.reader.poll();
      this.unsent.push(...fresh);
      if (this.failing) {
        this.failing = false;
        this.options.note(
          `read the agent's log on from byte ${this.lostAt} after the connection came back: nothing lost`,
        );
      }
    } catch (error) {
      if (!this.failing) {
        this.lostAt = this.options.reader.bytesRead;
        this.options.note(
          `lost the connection while reading the agent's log (${(error as Error).message}); reading on from byte ${this.lostAt} once it is back`,
        );
      }
      this.failing = true;
    }
    if (this.unsent.length > 0) await this.post();
    this.schedule(this.options.pollMs);
  }

  private async post(): Promise<void> {
    const batch = this.unsent;
    const doFetch = this.options.fetch ?? fetch;
    try {
      const response = await doFetch(this.options.callback.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.callback.token}`, 'content-type': 'application/x-ndjson' },
        body: batch.map((e) => JSON.stringify(e)).join('\n') + '\n',
        signal: AbortSignal.timeout(30_000),
      });
      await response.text();
      if (response.status === 410) return this.stop(); // the engine has moved past this cycle
      if (response.status === 200) this.unsent = [];
    } catch (error) {
      // The engine is busy or restarting (refused, reset, timed out): the events stay unsent and go
      // with the next poll. Said once until a post gets through again.
      if (!this.posting) {
        const cause = (error as Error & { cause?: Error }).cause;
        this.options.note(
          `could not hand the agent's events to the engine (${(error as Error).message}${cause ? `: ${cause.message}` : ''}); they go with the next poll`,
        );
      }
      this.posting = true;
      return;
    }
    this.posting = false;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.finish();
  }
}
