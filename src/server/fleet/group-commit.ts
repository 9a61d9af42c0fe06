/**
 * Group commit for the agent gateway's writes: the jobs queued while one transaction runs (scan
 * reports, check-in touches, action progress, enrollments from many agents at once) run together
 * in the next one, and each caller's promise settles only after that transaction committed — so
 * an acknowledged report is on disk (SQLite WAL, or PostgreSQL) before the agent hears "applied",
 * and `kill -9` loses nothing acknowledged. One commit per batch instead of one per request was
 * most of what ingestion cost on SQLite (a commit writes every touched page to the WAL again).
 *
 * A job that throws must not take the others down: the batch is rolled back and its jobs run
 * again one transaction each, so only the failing one rejects. Jobs therefore read what they need
 * inside their transaction and are safe to run twice after a rollback.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../store/schema.ts';

/** Jobs per transaction: bounds how long one batch holds SQLite's single connection from readers. */
export const GROUP_COMMIT_MAX_JOBS = 64;

export type GroupJob<T> = (trx: Transaction<Database>) => Promise<T>;

export interface GroupCommit {
  /** Runs `job` in the next batch's transaction; settles after that transaction committed. */
  run<T>(job: GroupJob<T>): Promise<T>;
}

interface Queued {
  readonly job: GroupJob<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

export function createGroupCommit(db: Kysely<Database>, maxJobs = GROUP_COMMIT_MAX_JOBS): GroupCommit {
  const queue: Queued[] = [];
  let running = false;

  async function runBatch(batch: readonly Queued[]): Promise<void> {
    let outcomes: Outcome[] | null = null;
    try {
      outcomes = await db.transaction().execute(async (trx) => {
        const out: Outcome[] = [];
        // Sequential: one connection, and a later job of the same host must see the earlier one.
        for (const q of batch) out.push({ ok: true, value: await q.job(trx) });
        return out;
      });
    } catch (error) {
      if (batch.length === 1) outcomes = [{ ok: false, error }];
    }
    if (outcomes === null) {
      // Some job failed and rolled the whole batch back: each again on its own.
      outcomes = [];
      for (const q of batch) {
        try {
          outcomes.push({ ok: true, value: await db.transaction().execute((trx) => q.job(trx)) });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
    }
    batch.forEach((q, i) => {
      const o = outcomes[i]!;
      if (o.ok) q.resolve(o.value);
      else q.reject(o.error);
    });
  }

  async function drain(): Promise<void> {
    running = true;
    try {
      while (queue.length > 0) await runBatch(queue.splice(0, maxJobs));
    } finally {
      running = false;
    }
  }

  return {
    run<T>(job: GroupJob<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
        // The first job of a quiet moment waits one turn of the event loop for company.
        if (!running) {
          running = true;
          setImmediate(() => void drain());
        }
      });
    },
  };
}
