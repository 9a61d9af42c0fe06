/**
 * Coalesces the point reads of many concurrent requests into a few `IN (…)` queries: every key
 * asked for during one turn of the event loop is loaded together (DataLoader's idea, without its
 * cache). When 10,000 held check-ins are woken at once by an action, each would otherwise run its
 * own query, one at a time through the store's single SQLite connection.
 */

/** Keys per query: under SQLite's bound-parameter limit and PostgreSQL's comfortable IN lists. */
export const BATCH_KEYS = 500;

export interface BatchLoader<K, V> {
  /** The value for `key` (undefined when the loader found none). */
  load(key: K): Promise<V | undefined>;
}

/**
 * @example
 *   const seqs = batchLoader((ids) => reportSeqs(db, ids)); // one query for all ids asked this tick
 *   await seqs.load(hostId)
 */
export function batchLoader<K, V>(fetch: (keys: readonly K[]) => Promise<ReadonlyMap<K, V>>): BatchLoader<K, V> {
  let pending: Map<K, { resolve: (v: V | undefined) => void; reject: (e: unknown) => void }[]> | null = null;

  const flush = async (batch: NonNullable<typeof pending>): Promise<void> => {
    const keys = [...batch.keys()];
    for (let i = 0; i < keys.length; i += BATCH_KEYS) {
      const chunk = keys.slice(i, i + BATCH_KEYS);
      try {
        const found = await fetch(chunk);
        for (const k of chunk) for (const w of batch.get(k)!) w.resolve(found.get(k));
      } catch (error) {
        for (const k of chunk) for (const w of batch.get(k)!) w.reject(error);
      }
    }
  };

  return {
    load(key) {
      return new Promise<V | undefined>((resolve, reject) => {
        if (pending === null) {
          const batch = (pending = new Map());
          setImmediate(() => {
            pending = null;
            void flush(batch);
          });
        }
        const waiting = pending.get(key);
        if (waiting) waiting.push({ resolve, reject });
        else pending.set(key, [{ resolve, reject }]);
      });
    },
  };
}
