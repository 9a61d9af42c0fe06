/**
 * The agent's clock: the only place it reads the time or sleeps, so tests can drive an hour of
 * "installer busy" polling in milliseconds.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../domain/clock.ts';

/** One Clock for engine, agent and lab (domain/clock.ts); tests may pass engine/manual-clock.ts's. */
export type { Clock } from '../domain/clock.ts';

/** Wall-clock time and real timers. */
export const systemClock: Clock = Object.freeze({
  now: () => new Date(),
  sleep: async (ms: number, signal: AbortSignal): Promise<void> => {
    await delay(ms, undefined, { signal });
  },
});
