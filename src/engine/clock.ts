/**
 * Time as the engine sees it: `now()` and an abortable `sleep`. Tests pass their own; production
 * uses `systemClock`. Every wait in the engine goes through `sleep`, so no timer outlives its signal.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface Clock {
  now(): Date;
  /** Resolves after `ms`; rejects (AbortError) as soon as `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: async (ms, signal) => {
    await delay(Math.max(0, ms), undefined, { signal });
  },
};

/** Sleeps, but resolves (false) instead of rejecting when aborted; true when the time passed. */
export async function sleepUnlessAborted(clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await clock.sleep(ms, signal);
    return true;
  } catch (error) {
    if (signal.aborted) return false;
    throw error;
  }
}

/**
 * A wake-up call: `wait(ms, signal)` resolves when `ring()` is called, when `ms` passed, or when
 * `signal` aborts — whichever is first — and leaves no timer behind.
 */
export class Doorbell {
  private rung = false;
  private waiters: (() => void)[] = [];

  constructor(private readonly clock: Clock) {}

  ring(): void {
    this.rung = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.rung) {
      this.rung = false;
      return;
    }
    const timer = new AbortController();
    const onAbort = () => timer.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([
        sleepUnlessAborted(this.clock, ms, timer.signal),
        new Promise<void>((resolve) => this.waiters.push(resolve)),
      ]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      timer.abort();
      this.rung = false;
    }
  }
}
