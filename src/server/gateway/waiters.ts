/**
 * The long-poll hub: at most one held check-in per host. `wake(hostIds)` answers the held check-ins
 * of those hosts at once (an action was created for them), which is how an action reaches a
 * connected agent in milliseconds. A held check-in also ends when its wait runs out, when the
 * agent hangs up, or when the gateway closes (server shutdown: agents come back after a restart).
 */

/** Why a held check-in ended. */
export type WakeReason = 'woken' | 'timeout' | 'replaced' | 'closed' | 'aborted';

/** How a held check-in ended, and what the wake brought (the action that woke it). */
export interface Wake<T> {
  readonly reason: WakeReason;
  readonly payload?: T;
}

interface Waiter<T> {
  readonly resolve: (reason: WakeReason, payload?: T) => void;
  readonly timer: NodeJS.Timeout;
}

export class LongPollHub<T = never> {
  private readonly waiters = new Map<string, Waiter<T>>();
  private closed = false;

  /** Hosts with a check-in held open right now ("connected"). */
  get connected(): number {
    return this.waiters.size;
  }

  isConnected(hostId: string): boolean {
    return this.waiters.has(hostId);
  }

  /**
   * Holds the host's check-in until woken, `waitMs` passes or `signal` aborts. A second check-in of
   * the same host replaces the first (the first answers at once: an agent never has two).
   */
  wait(hostId: string, waitMs: number, signal: AbortSignal): Promise<Wake<T>> {
    if (this.closed) return Promise.resolve({ reason: 'closed' });
    this.finish(hostId, 'replaced');
    return new Promise<Wake<T>>((resolve) => {
      const done = (reason: WakeReason, payload?: T): void => {
        const w = this.waiters.get(hostId);
        if (w?.resolve === done) {
          clearTimeout(w.timer);
          this.waiters.delete(hostId);
        }
        signal.removeEventListener('abort', onAbort);
        resolve(payload === undefined ? { reason } : { reason, payload });
      };
      const onAbort = (): void => done('aborted');
      const timer = setTimeout(() => done('timeout'), waitMs);
      this.waiters.set(hostId, { resolve: done, timer });
      if (signal.aborted) done('aborted');
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Answers the held check-ins of these hosts now, each with `payload`. Returns how many were held. */
  wake(hostIds: Iterable<string>, payload?: T): number {
    let n = 0;
    for (const id of hostIds) if (this.finish(id, 'woken', payload)) n++;
    return n;
  }

  /** Answers every held check-in and refuses new ones (idempotent). */
  close(): void {
    this.closed = true;
    for (const id of [...this.waiters.keys()]) this.finish(id, 'closed');
  }

  private finish(hostId: string, reason: WakeReason, payload?: T): boolean {
    const w = this.waiters.get(hostId);
    if (!w) return false;
    w.resolve(reason, payload);
    return true;
  }
}
