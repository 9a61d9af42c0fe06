/**
 * What the agent owes the server, delivered in order: action progress (the outbox, mirrored to
 * outbox.json after every change) first, then the pending scan report. Everything is on disk before
 * it is sent, so a server restart, a network cut or an agent restart loses nothing; a resent report
 * or progress changes nothing server-side. One flush runs at a time.
 *
 * Split out of the service: the check-in loop, the work loop and the install action all hand things
 * to the server through here, and none of them needs to know how a refused delta is rebuilt.
 */
import { AGENT_PROTOCOL_VERSION, type ActionProgress, type ReportAck } from '../../domain/agent-protocol.ts';
import type { Clock } from '../clock.ts';
import { AgentHttpError, REQUEST_TIMEOUT_MS, type AgentHttp } from './http.ts';
import { buildReport } from './inventory.ts';
import type { AgentState, OutboxEntry, PendingReport } from './state.ts';

export interface DeliveryDeps {
  readonly state: AgentState;
  readonly http: AgentHttp;
  readonly clock: Clock;
  readonly log: (message: string) => void;
}

export class Delivery {
  private flushing: Promise<void> = Promise.resolve();
  /** Progress not yet delivered, oldest first. */
  private outbox: OutboxEntry[] = [];
  private outboxWrite: Promise<void> = Promise.resolve();

  constructor(private readonly deps: DeliveryDeps) {}

  /** Reads what an earlier run left undelivered (call once before anything is queued). */
  async load(): Promise<void> {
    this.outbox = await this.deps.state.outbox();
  }

  /** Queues one progress message of an action (on disk first) and starts delivering it. */
  async progress(actionId: string, p: Omit<ActionProgress, 'protocol' | 'at'>): Promise<void> {
    this.outbox.push({
      actionId,
      progress: { protocol: AGENT_PROTOCOL_VERSION, at: this.deps.clock.now().toISOString(), ...p } as ActionProgress,
    });
    await this.persistOutbox();
    this.flushSoon();
  }

  /** Sends what is queued on disk, in order: progress first, then the pending report. One flush at a time. */
  flush(signal: AbortSignal): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce(signal));
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** A flush in the background; a failure only postpones delivery (the check-in loop retries). */
  flushSoon(): void {
    this.flush(AbortSignal.timeout(REQUEST_TIMEOUT_MS)).catch((error: unknown) =>
      this.deps.log(`delivery postponed: ${describeError(error)}`),
    );
  }

  private async flushOnce(signal: AbortSignal): Promise<void> {
    const { state, http } = this.deps;
    while (this.outbox.length > 0) {
      const first = this.outbox[0]!;
      try {
        await http.json(
          'POST',
          `/api/v1/agent/actions/${encodeURIComponent(first.actionId)}/progress`,
          first.progress,
          signal,
        );
      } catch (error) {
        // The server will never accept it (the action is gone): drop it, keep the rest.
        if (!(error instanceof AgentHttpError) || error.retryable) throw error;
        this.deps.log(`progress for action ${first.actionId} refused (${error.code}): dropped`);
      }
      this.outbox.shift();
      await this.persistOutbox();
    }
    const pending = await state.pending();
    if (!pending) return;
    try {
      const { body } = await http.json<ReportAck>('POST', '/api/v1/agent/reports', pending.report, signal);
      if (body.ackedSeq === pending.report.seq) {
        await state.setAcked({ seq: pending.report.seq, updates: pending.inventory });
        // A scan may have queued a newer report meanwhile: only the one sent is done.
        if ((await state.pending())?.report.seq === pending.report.seq) await state.setPending(null);
        else await this.flushOnce(signal);
        return;
      }
      // The server is ahead of us (our state was lost): send everything again above its seq.
      await this.rebuildFull(pending.inventory, body.ackedSeq);
    } catch (error) {
      if (!(error instanceof AgentHttpError) || error.retryable) throw error;
      this.deps.log(
        `report ${pending.report.seq} refused (${error.code}: ${error.message}); sending a full report instead`,
      );
      await this.rebuildFull(pending.inventory, 0);
      if (error.code !== 'AGENT_REPORT_BASE_MISMATCH') throw error;
      await this.flushOnce(signal);
    }
  }

  private async rebuildFull(inventory: PendingReport['inventory'], serverSeq: number): Promise<void> {
    const { state } = this.deps;
    const pending = await state.pending();
    if (!pending) return;
    const seq = Math.max(await state.lastSeq(), serverSeq) + 1;
    await state.setLastSeq(seq);
    await state.setAcked(null);
    const { protocol: _p, seq: _s, baseSeq: _b, updates: _u, removed: _r, ...meta } = pending.report;
    await state.setPending({ report: buildReport(seq, null, inventory, meta), inventory });
  }

  /** Writes the outbox as it is now; writes are serialised, the last one wins. */
  private persistOutbox(): Promise<void> {
    const write = this.outboxWrite.then(() => this.deps.state.setOutbox(this.outbox));
    this.outboxWrite = write.catch((error: unknown) =>
      this.deps.log(`cannot write the outbox: ${describeError(error)}`),
    );
    return write;
  }
}

export function describeError(error: unknown): string {
  if (error instanceof AgentHttpError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
