/**
 * The agent's clock: the only place it reads the time or sleeps, so tests can drive an hour of
 * "installer busy" polling in milliseconds.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface Clock {
  now(): Date;
  /** Resolves after `ms`, rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** Wall-clock time and real timers. */
export const systemClock: Clock = Object.freeze({
  now: () => new Date(),
  sleep: async (ms: number, signal: AbortSignal): Promise<void> => {
    await delay(ms, undefined, { signal });
  },
});
