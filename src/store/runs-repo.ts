/**
 * Durable runs: the run row, each host's cycle state, per-update results and the event log.
 *
 * The engine saves every transition through `saveTransition` *before* executing its commands
 * (write-ahead), in one transaction: the input event, the new host state and the updates it
 * touched. A connector killed between the two resumes from the saved state and re-issues what the
 * state implies. The state and options are stored as JSON text; this module does not interpret them.
 *
 * Several connector processes may share one state file: every query names its run, and every
 * write is retried while another process holds the file's write lock (`retryBusy`).
 */
import type { Kysely, Transaction } from 'kysely';
import { retryBusy } from './busy.ts';
import type { Database } from './schema.ts';

export interface StoredRun {
  readonly id: string;
  readonly optionsJson: string;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly outcome: string;
  readonly exitCode: number | null;
}

export interface StoredHost {
  readonly host: string;
  readonly ordinal: number;
  readonly phase: string;
  readonly stateJson: string;
}

/** One host's state as the repository needs it: columns it copies out of the JSON. */
export interface HostSnapshot {
  readonly host: string;
  readonly phase: string;
  readonly cycle: number;
  readonly reboots: number;
  readonly message: string | null;
  readonly stateJson: string;
  readonly updates: readonly UpdateRow[];
}

export interface UpdateRow {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly result: string;
  readonly hresult: string | null;
  readonly attempts: number;
  readonly cycle: number;
  readonly message: string | null;
}

export interface EventRow {
  readonly host: string | null;
  readonly at: string;
  readonly kind: string;
  readonly cycle: number | null;
  readonly seq: number | null;
  readonly data: unknown;
}

export interface StoredEvent extends EventRow {
  /** Position in the run's event log, from 1. */
  readonly n: number;
}

export class RunsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Creates a run with its hosts in their initial state. */
  async createRun(
    run: { id: string; optionsJson: string; startedAt: string },
    hosts: readonly HostSnapshot[],
    events: readonly EventRow[],
  ): Promise<void> {
    await retryBusy(() =>
      this.db.transaction().execute(async (tx) => {
        await tx
          .insertInto('runs')
          .values({
            id: run.id,
            options_json: run.optionsJson,
            started_at: run.startedAt,
            finished_at: null,
            outcome: 'running',
            exit_code: null,
          })
          .execute();
        let ordinal = 0;
        for (const h of hosts) {
          await tx
            .insertInto('run_hosts')
            .values({
              run_id: run.id,
              host: h.host,
              ordinal: ordinal++,
              phase: h.phase,
              state_json: h.stateJson,
              cycles: h.cycle,
              reboots: h.reboots,
              message: h.message,
              updated_at: run.startedAt,
            })
            .execute();
        }
        await insertEvents(tx, run.id, events);
      }),
    );
  }

  async getRun(id: string): Promise<StoredRun | null> {
    const r = await this.db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
    return r
      ? {
          id: r.id,
          optionsJson: r.options_json,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
          outcome: r.outcome,
          exitCode: r.exit_code,
        }
      : null;
  }

  async listRuns(limit = 50): Promise<readonly StoredRun[]> {
    const rows = await this.db.selectFrom('runs').selectAll().orderBy('started_at', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: r.id,
      optionsJson: r.options_json,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      outcome: r.outcome,
      exitCode: r.exit_code,
    }));
  }

  async getHosts(runId: string): Promise<readonly StoredHost[]> {
    const rows = await this.db
      .selectFrom('run_hosts')
      .select(['host', 'ordinal', 'phase', 'state_json'])
      .where('run_id', '=', runId)
      .orderBy('ordinal')
      .execute();
    return rows.map((r) => ({ host: r.host, ordinal: r.ordinal, phase: r.phase, stateJson: r.state_json }));
  }

  async getUpdates(runId: string, host: string): Promise<readonly UpdateRow[]> {
    const rows = await this.db
      .selectFrom('run_host_updates')
      .selectAll()
      .where('run_id', '=', runId)
      .where('host', '=', host)
      .orderBy('update_id')
      .execute();
    return rows.map((r) => ({
      updateId: r.update_id,
      kb: r.kb,
      title: r.title,
      result: r.result,
      hresult: r.hresult,
      attempts: r.attempts,
      cycle: r.cycle,
      message: r.message,
    }));
  }

  async getEvents(runId: string, host?: string): Promise<readonly StoredEvent[]> {
    let q = this.db.selectFrom('run_events').selectAll().where('run_id', '=', runId);
    if (host !== undefined) q = q.where('host', '=', host);
    const rows = await q.orderBy('n').execute();
    return rows.map((r) => ({
      n: r.n,
      host: r.host,
      at: r.at,
      kind: r.kind,
      cycle: r.cycle,
      seq: r.seq,
      data: JSON.parse(r.data_json) as unknown,
    }));
  }

  /** Saves one transition of one host atomically: its events, its new state, the updates it changed. */
  async saveTransition(runId: string, snapshot: HostSnapshot, events: readonly EventRow[], at: string): Promise<void> {
    await retryBusy(() =>
      this.db.transaction().execute(async (tx) => {
        await insertEvents(tx, runId, events);
        await tx
          .updateTable('run_hosts')
          .set({
            phase: snapshot.phase,
            state_json: snapshot.stateJson,
            cycles: snapshot.cycle,
            reboots: snapshot.reboots,
            message: snapshot.message,
            updated_at: at,
          })
          .where('run_id', '=', runId)
          .where('host', '=', snapshot.host)
          .execute();
        for (const u of snapshot.updates) {
          const values = {
            kb: u.kb,
            title: u.title,
            result: u.result,
            hresult: u.hresult,
            attempts: u.attempts,
            cycle: u.cycle,
            message: u.message,
          };
          await tx
            .insertInto('run_host_updates')
            .values({ run_id: runId, host: snapshot.host, update_id: u.updateId, ...values })
            .onConflict((oc) => oc.columns(['run_id', 'host', 'update_id']).doUpdateSet(values))
            .execute();
        }
      }),
    );
  }

  async appendEvents(runId: string, events: readonly EventRow[]): Promise<void> {
    if (events.length === 0) return;
    await retryBusy(() => this.db.transaction().execute((tx) => insertEvents(tx, runId, events)));
  }

  /** Replaces a run's saved options (a resume with a new deadline). */
  async setOptions(runId: string, optionsJson: string): Promise<void> {
    await retryBusy(() =>
      this.db.updateTable('runs').set({ options_json: optionsJson }).where('id', '=', runId).execute(),
    );
  }

  /** Marks a run running again (resume) or finished. */
  async setRunStatus(
    runId: string,
    status: { outcome: string; finishedAt: string | null; exitCode: number | null },
    events: readonly EventRow[] = [],
  ): Promise<void> {
    await retryBusy(() =>
      this.db.transaction().execute(async (tx) => {
        await tx
          .updateTable('runs')
          .set({ outcome: status.outcome, finished_at: status.finishedAt, exit_code: status.exitCode })
          .where('id', '=', runId)
          .execute();
        await insertEvents(tx, runId, events);
      }),
    );
  }
}

async function insertEvents(tx: Transaction<Database>, runId: string, events: readonly EventRow[]): Promise<void> {
  if (events.length === 0) return;
  // Inside the transaction, so two writers of one run cannot take the same numbers.
  const last = await tx
    .selectFrom('run_events')
    .select((eb) => eb.fn.max('n').as('max'))
    .where('run_id', '=', runId)
    .executeTakeFirst();
  const first = Number(last?.max ?? 0) + 1;
  await tx
    .insertInto('run_events')
    .values(
      events.map((e, i) => ({
        run_id: runId,
        n: first + i,
        host: e.host,
        at: e.at,
        kind: e.kind,
        cycle: e.cycle,
        seq: e.seq,
        data_json: JSON.stringify(e.data),
      })),
    )
    .execute();
}
