/**
 * Wakes the live views (server-sent events) when the events outbox grows. Writes made by this
 * process notify at once after they commit; writes made by others — the `patchline server …`
 * CLI on the same store, or later another replica on the same PostgreSQL — are seen by a light
 * poll of the outbox's highest id. Subscribers then read the outbox itself (the store is the
 * truth; nothing is kept only in memory).
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { latestEventId } from '../store/server/audit-repo.ts';

/** How often another process's writes are looked for. Live views tolerate a second. */
export const EVENT_POLL_INTERVAL_MS = 1000;

export interface EventFeed {
  /** Called after a change committed: subscribers look for new events now. */
  notify(): void;
  subscribe(listener: () => void): () => void;
  start(): void;
  stop(): void;
}

export function createEventFeed(
  db: Kysely<Database>,
  onError: (error: unknown) => void,
  intervalMs = EVENT_POLL_INTERVAL_MS,
): EventFeed {
  const listeners = new Set<() => void>();
  let timer: NodeJS.Timeout | undefined;
  let lastSeen = -1;
  let polling = false;
  const notify = (): void => {
    for (const listener of listeners) listener();
  };
  const poll = async (): Promise<void> => {
    if (polling || listeners.size === 0) return;
    polling = true;
    try {
      const latest = await latestEventId(db);
      if (latest !== lastSeen) {
        lastSeen = latest;
        notify();
      }
    } catch (error) {
      onError(error);
    } finally {
      polling = false;
    }
  };
  return {
    notify,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void poll(), intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      listeners.clear();
    },
  };
}
