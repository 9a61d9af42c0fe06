/**
 * The HTTP callback agents stream their events to (docs/internals.md §3).
 *
 * One server per run on 127.0.0.1:0 (or the configured address). Each cycle registers a random
 * path id and a random one-time bearer token: `POST /cycles/<id>/events` with an NDJSON body of
 * AgentEvents → `200 {"ackSeq": N}` once the events are saved, `401` for a wrong token, `410` when
 * the cycle is no longer expected (finished, unregistered, or from before a connector restart).
 * The token is compared in constant time and never logged.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { AgentEvent } from '../domain/agent-log.ts';

/** An agent's batch is a few events; a scan of a badly out-of-date host is a few MB at most. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
/**
 * On close, answers in flight get this long to reach their agent: the last host's final
 * acknowledgement is what lets its agent exit instead of waiting out its log hand-over.
 */
const CLOSE_GRACE_MS = 2_000;
/** Pending connections queued while the event loop is busy (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

/** Receives a batch (unordered, possibly resent) and answers the highest contiguous seq saved. */
export type EventSink = (events: readonly AgentEvent[]) => Promise<number>;

export interface CycleCallback {
  readonly url: string;
  readonly token: string;
  /** Stops accepting this cycle's events (answers 410 from now on). Idempotent. */
  unregister(): void;
}

interface Registration {
  readonly token: Buffer;
  readonly sink: EventSink;
}

export class CallbackServer {
  private readonly cycles = new Map<string, Registration>();
  private closing: Promise<void> | null = null;
  private inFlight = 0;
  private drained: (() => void) | null = null;

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
  ) {}

  /** Listens on `host`:0 and resolves once listening. */
  static async start(host = '127.0.0.1'): Promise<CallbackServer> {
    let self: CallbackServer | null = null;
    const server = createServer((req, res) => {
      if (!self) {
        res.writeHead(503).end();
        return;
      }
      const current = self;
      current.inFlight++;
      res.once('close', () => {
        current.inFlight--;
        if (current.inFlight === 0) current.drained?.();
      });
      current.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: (error as Error).message }));
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Every agent of a large parallel run may connect at once (a fleet patched in lock-step):
      // a full accept queue makes the kernel drop connections, and the agent's retry waits for
      // its SYN retransmits (seconds to tens of seconds). The kernel caps it at somaxconn.
      server.listen({ port: 0, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    self = new CallbackServer(server, `http://${urlHost}:${addr.port}`);
    return self;
  }

  /** A fresh URL and token for one cycle; events posted there go to `sink`. */
  register(sink: EventSink): CycleCallback {
    const id = randomBytes(12).toString('hex');
    const token = randomBytes(32).toString('base64url');
    this.cycles.set(id, { token: Buffer.from(token), sink });
    return { url: `${this.baseUrl}/cycles/${id}/events`, token, unregister: () => void this.cycles.delete(id) };
  }

  /**
   * Closes the server: no new connections; answers in flight are delivered (up to CLOSE_GRACE_MS),
   * then every connection is dropped. Idempotent.
   */
  close(): Promise<void> {
    this.cycles.clear();
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CLOSE_GRACE_MS);
          this.drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      this.server.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = /^\/cycles\/([0-9a-f]{24})\/events$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      req.resume();
      reply(res, 404, { error: 'not found' });
      return;
    }
    const reg = this.cycles.get(match[1] ?? '');
    if (!reg) {
      req.resume();
      reply(res, 410, { error: 'this cycle is no longer expected; the connector reads the log from the pipe' });
      return;
    }
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const givenBuf = Buffer.from(given);
    if (givenBuf.length !== reg.token.length || !timingSafeEqual(givenBuf, reg.token)) {
      req.resume();
      reply(res, 401, { error: 'wrong token' });
      return;
    }
    const body = await readBody(req);
    if (body === null) {
      reply(res, 413, { error: 'body too large' });
      return;
    }
    const events: AgentEvent[] = [];
    for (const line of body.split('\n')) {
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        reply(res, 400, { error: `not JSON: ${(error as Error).message}` });
        return;
      }
      if (!isAgentEventShape(value)) {
        reply(res, 400, { error: 'each line must be an agent event with a positive integer seq and a kind' });
        return;
      }
      events.push(value);
    }
    if (!this.cycles.has(match[1] ?? '')) {
      reply(res, 410, { error: 'this cycle is no longer expected' });
      return;
    }
    const ackSeq = await reg.sink(events);
    reply(res, 200, { ackSeq });
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isAgentEventShape(v: unknown): v is AgentEvent {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.kind === 'string' &&
    typeof o.seq === 'number' &&
    Number.isInteger(o.seq) &&
    o.seq > 0 &&
    typeof o.at === 'string'
  );
}
