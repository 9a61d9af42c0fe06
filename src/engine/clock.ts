/**
 * Time as the engine sees it: `now()` and an abortable `sleep` (the Clock of domain/clock.ts).
 * Tests pass a ManualClock (manual-clock.ts); production uses `systemClock`. Every wait in the
 * engine goes through `sleep`, so no timer outlives its signal — and tests control all of them.
 */
import type { Clock } from '../domain/clock.ts';

export type { Clock } from '../domain/clock.ts';

export const systemClock: Clock = {
  now: () => new Date(),
  // A plain timer, rejecting with the signal's own reason: timers/promises builds an AbortError
  // (a stack trace) per aborted sleep, and the engine aborts a wait each time an agent event
  // wakes a host — tens of thousands in a 500-host night (bench/run-overhead's CPU profile).
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal.addEventListener('abort', onAbort, { once: true });
    }),
};

/** The reason a Doorbell ends its own timer with: one shared value, no DOMException per wake-up. */
const DOORBELL_DONE = Object.freeze(new Error('doorbell wait over'));

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
 * An AbortSignal that aborts after `ms` on `clock` (AbortSignal.timeout runs on real time only).
 * `clear()` drops the timer once the bounded work is done.
 */
export function clockTimeout(clock: Clock, ms: number): { readonly signal: AbortSignal; clear(): void } {
  const timeout = new AbortController();
  const timer = new AbortController();
  void sleepUnlessAborted(clock, ms, timer.signal).then((passed) => {
    if (passed) timeout.abort(CLOCK_TIMEOUT);
  });
  return { signal: timeout.signal, clear: () => timer.abort(DOORBELL_DONE) };
}

/** The reason a clockTimeout aborts with (named like AbortSignal.timeout's). */
const CLOCK_TIMEOUT = Object.freeze(Object.assign(new Error('the wait timed out'), { name: 'TimeoutError' }));

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
    const onAbort = () => timer.abort(DOORBELL_DONE);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([
        sleepUnlessAborted(this.clock, ms, timer.signal),
        new Promise<void>((resolve) => this.waiters.push(resolve)),
      ]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      timer.abort(DOORBELL_DONE);
      this.rung = false;
    }
  }
}
