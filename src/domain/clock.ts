/**
 * Time as every part of Patchline sees it — the engine, the agent and the lab's simulated
 * provider: `now()` and an abortable `sleep`. Production passes a clock over real timers
 * (engine/clock.ts `systemClock`); tests pass engine/manual-clock.ts's ManualClock and move time
 * themselves, so an hour-long reboot wait runs in milliseconds, in the same order every time.
 */

export interface Clock {
  now(): Date;
  /** Resolves after `ms`; rejects (with the signal's reason) as soon as `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}
