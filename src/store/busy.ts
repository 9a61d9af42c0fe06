/**
 * Retrying work that found the SQLite state file locked by another process.
 *
 * SQLite's busy timeout already makes a statement wait for another connector's write lock, but it
 * gives up after BUSY_TIMEOUT_MS, and it blocks the whole process while it waits (better-sqlite3
 * is synchronous). A transaction that still gets SQLITE_BUSY was rolled back whole, so it is safe
 * to run again: `retryBusy` does, after a jittered, capped backoff that lets the event loop run.
 * Errors other than "busy" (and busy past the total budget) are passed on unchanged.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** How long one statement waits for another process's write lock (SQLite's busy_timeout). */
export const BUSY_TIMEOUT_MS = 5_000;
/** How long a transaction keeps being retried while the file stays locked; a patch night must not die of a neighbour. */
export const BUSY_RETRY_TOTAL_MS = 2 * 60_000;
const BACKOFF_FIRST_MS = 20;
const BACKOFF_MAX_MS = 1_000;

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY, SQLITE_BUSY_TIMEOUT). */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * Runs `work` (one whole transaction) again while SQLite reports the file busy.
 * @example await retryBusy(() => db.transaction().execute(async (tx) => { ... }))
 */
export async function retryBusy<T>(work: () => Promise<T>, budgetMs = BUSY_RETRY_TOTAL_MS): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isBusy(error) || Date.now() - started >= budgetMs) throw error;
      const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
      // Jitter: processes that collided once should not collide again in step.
      await sleep(backoff * (0.5 + Math.random()));
    }
  }
}
