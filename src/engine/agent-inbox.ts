/**
 * The agent events of one host that arrived on the callback and are not applied yet.
 *
 * Agents post batches that may be resent, reordered or ahead of the launch's confirmation; the
 * inbox keeps them by seq and hands the event loop only the run that follows the last applied seq
 * without a gap. A POST is answered once its events are applied (or after a bound): `waitUntil`
 * parks it, `notify` re-checks after each transition. Events of an agent stopped by cancel or
 * deadline are kept apart (`keepLate`): recorded for the report, never decided on. No I/O.
 */
import type { AgentEvent } from '../domain/agent-log.ts';
import { type Clock, sleepUnlessAborted } from './clock.ts';

/** Ends an ack wait's timer: one shared reason instead of a DOMException per agent POST. */
const ACK_WAIT_OVER = Object.freeze(new Error('ack wait over'));

export class AgentInbox {
  /** Events of the running cycle not yet applied, by seq. */
  private readonly buffer = new Map<number, AgentEvent>();
  /** Events of an agent that was stopped (cancel/deadline): recorded, not decided on. */
  private readonly late = new Map<number, AgentEvent>();
  private readonly waiters = new Set<() => void>();
  private released = false;

  /**
   * Keeps the events above `lastSeq`; returns the highest seq the inbox can reach from `lastSeq`
   * without a gap (what the agent's POST is answered with once applied).
   *
   * @example inbox.add([{ seq: 2 }, { seq: 1 }], 0) // 2
   */
  add(events: readonly AgentEvent[], lastSeq: number): number {
    for (const e of events) if (e.seq > lastSeq) this.buffer.set(e.seq, e);
    let target = lastSeq;
    while (this.buffer.has(target + 1)) target++;
    return target;
  }

  keepLate(events: readonly AgentEvent[], lastSeq: number): void {
    for (const e of events) if (e.seq > lastSeq) this.late.set(e.seq, e);
  }

  /** The events that follow `lastSeq` without a gap, in seq order, removed from the inbox. */
  takeReady(lastSeq: number): AgentEvent[] {
    for (const seq of [...this.buffer.keys()]) if (seq <= lastSeq) this.buffer.delete(seq);
    const out: AgentEvent[] = [];
    for (let seq = lastSeq + 1; this.buffer.has(seq); seq++) {
      out.push(this.buffer.get(seq)!);
      this.buffer.delete(seq);
    }
    return out;
  }

  /** Everything left (unapplied and late), once an agent was stopped; the inbox is empty after. */
  drainLeftovers(): AgentEvent[] {
    const all = [...this.buffer.values(), ...this.late.values()];
    this.buffer.clear();
    this.late.clear();
    return all;
  }

  /** A new cycle: events of the previous one are no longer wanted. */
  clear(): void {
    this.buffer.clear();
  }

  /** Resolves once `done()` is true at a `notify()`, or after `ms` on `clock`, whichever is first. */
  waitUntil(done: () => boolean, clock: Clock, ms: number): Promise<void> {
    if (this.released || done()) return Promise.resolve();
    const timeout = new AbortController();
    return new Promise<void>((resolve) => {
      const finish = () => {
        this.waiters.delete(check);
        timeout.abort(ACK_WAIT_OVER);
        resolve();
      };
      const check = () => {
        if (this.released || done()) finish();
      };
      this.waiters.add(check);
      sleepUnlessAborted(clock, ms, timeout.signal).then(finish, finish);
    });
  }

  /** Re-checks every parked wait (after a transition). */
  notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Answers every parked wait now, and any later one at once (the host's driver is done). */
  releaseAll(): void {
    this.released = true;
    this.notify();
  }
}
