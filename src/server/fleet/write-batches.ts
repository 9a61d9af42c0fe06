/**
 * The agent gateway's two hottest writes, batched per turn of the event loop into one job of the
 * group commit each: check-in touches (last seen, online until, boot id) and action progress. An
 * action wakes every held check-in of a ring at once; each agent then writes a touch and sends a
 * `received` progress report, 10,000 of each within a second or two. One statement per touch and
 * five per progress report, each built and compiled by the query builder, were most of the server
 * CPU an action cost at 10,000 agents (and delivery waits behind them). Batched, a touch costs a
 * share of one `UPDATE … WHERE id IN (…)` and a progress report one `UPDATE` of its row plus a
 * share of the reads and of one multi-row event insert.
 *
 * Each caller's promise still settles only after the transaction holding its write committed
 * (group-commit.ts), so nothing acknowledged is lost on `kill -9`.
 */
import { sql, type Transaction } from 'kysely';
import type { ActionProgress } from '../../domain/agent-protocol.ts';
import type { Database } from '../../store/schema.ts';
import { appendEvents } from '../../store/server/audit-repo.ts';
import {
  actionHostsOf,
  anyActionHostFailed,
  findHostsByIds,
  openActionHost,
  updateAction,
  updateActionHost,
  type ActionHostRow,
  type HostRow,
} from '../../store/server/fleet-repo.ts';
import type { PlaceholderStyle } from '../../store/server/host-updates-sql.ts';
import { BATCH_KEYS } from './batch-loader.ts';
import type { GroupCommit } from './group-commit.ts';

/** A host counts as online this long after its last check-in (a held check-in lasts up to 50 s). */
export const ONLINE_GRACE_MS = 2 * 60_000;
const TERMINAL = new Set(['succeeded', 'failed']);

/**
 * Collects the calls of one turn of the event loop and writes them in one group-commit job.
 * `write` gets the calls in arrival order and returns one result per call.
 */
function perTurn<I, R>(
  commits: GroupCommit,
  write: (trx: Transaction<Database>, items: readonly I[]) => Promise<readonly R[]>,
): (item: I) => Promise<R> {
  let pending: I[] | null = null;
  let results: Promise<readonly R[]> = Promise.resolve([]);
  return (item) => {
    if (pending === null) {
      const batch: I[] = (pending = []);
      results = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        pending = null;
        return commits.run((trx) => write(trx, batch));
      });
    }
    const index = pending.push(item) - 1;
    return results.then((r) => r[index]!);
  };
}

export interface Touch {
  readonly hostId: string;
  readonly at: Date;
  readonly bootId: string | null;
}

/**
 * A host seen again this soon after its last written touch, with the same boot id, is not written
 * again: last-seen times are kept to this resolution (a host stays online ONLINE_GRACE_MS after it).
 * An action's answer and the agent's next check-in follow each other within milliseconds; at 10,000
 * agents that second write per agent was a third of what an action cost the server.
 */
export const TOUCH_RESOLUTION_MS = 10_000;

/**
 * Check-in touches. The hosts of a batch share its latest time (they were all seen within that
 * turn); the last boot id a host sent in the batch wins, hosts that sent none keep theirs. A touch
 * within TOUCH_RESOLUTION_MS of the host's last committed one, with no new boot id, resolves at once.
 */
export function touchWriter(commits: GroupCommit): (touch: Touch) => Promise<void> {
  /** Per host, the last touch committed by this process (a cache: the row is what counts). */
  const written = new Map<string, { readonly at: number; readonly bootId: string | null }>();
  const write = batchedTouches(commits);
  return async (touch) => {
    const at = touch.at.getTime();
    const last = written.get(touch.hostId);
    if (
      last &&
      at >= last.at &&
      at - last.at < TOUCH_RESOLUTION_MS &&
      (touch.bootId === null || touch.bootId === last.bootId)
    )
      return;
    await write(touch);
    if (written.size >= MAX_REMEMBERED_TOUCHES) written.clear();
    written.set(touch.hostId, { at, bootId: touch.bootId ?? last?.bootId ?? null });
  };
}
const MAX_REMEMBERED_TOUCHES = 200_000;

function batchedTouches(commits: GroupCommit): (touch: Touch) => Promise<void> {
  return perTurn<Touch, void>(commits, async (trx, batch) => {
    const at = Math.max(...batch.map((t) => t.at.getTime()));
    const changes = {
      last_seen_at: new Date(at).toISOString(),
      online_until: new Date(at + ONLINE_GRACE_MS).toISOString(),
    };
    const boots = new Map<string, string>();
    for (const t of batch) if (t.bootId !== null) boots.set(t.hostId, t.bootId);
    const plain = [...new Set(batch.map((t) => t.hostId))].filter((id) => !boots.has(id));
    for (let i = 0; i < plain.length; i += BATCH_KEYS)
      await trx
        .updateTable('hosts')
        .set(changes)
        .where('id', 'in', plain.slice(i, i + BATCH_KEYS))
        .execute();
    const booted = [...boots];
    for (let i = 0; i < booted.length; i += BATCH_KEYS / 2) {
      const chunk = booted.slice(i, i + BATCH_KEYS / 2);
      const bootCase = sql<string>`case ${sql.ref('id')} ${sql.join(
        chunk.map(([id, boot]) => sql`when ${id} then ${boot}`),
        sql` `,
      )} end`;
      await trx
        .updateTable('hosts')
        .set({ ...changes, boot_id: bootCase })
        .where(
          'id',
          'in',
          chunk.map(([id]) => id),
        )
        .execute();
    }
    return batch.map(() => undefined);
  });
}

export interface ProgressWrite {
  readonly hostId: string;
  readonly actionId: string;
  readonly progress: ActionProgress;
  readonly at: Date;
}

/**
 * Action progress. Per report, as when each had its own job: a resent report (same state, time,
 * percent and phase) is recorded once; a host that ended (succeeded, failed) keeps its end state;
 * the action runs until its last host ends, then is done, or failed if any host failed. Resolves
 * false for an action the host is not part of.
 */
export function progressWriter(
  commits: GroupCommit,
  style: PlaceholderStyle,
): (write: ProgressWrite) => Promise<boolean> {
  return perTurn<ProgressWrite, boolean>(commits, async (trx, batch) => {
    const hosts = new Map<string, HostRow>();
    const hostIds = [...new Set(batch.map((w) => w.hostId))];
    for (let i = 0; i < hostIds.length; i += BATCH_KEYS)
      for (const h of await findHostsByIds(trx, hostIds.slice(i, i + BATCH_KEYS))) hosts.set(h.id, h);
    const rowKey = (actionId: string, hostKey: string): string => `${actionId}\u0000${hostKey}`;
    const rows = new Map<string, ActionHostRow>();
    const actionIds = [...new Set(batch.map((w) => w.actionId))];
    const keys = [...new Set([...hosts.values()].map((h) => h.key))];
    for (let i = 0; i < keys.length; i += BATCH_KEYS)
      for (const r of await actionHostsOf(trx, actionIds, keys.slice(i, i + BATCH_KEYS)))
        rows.set(rowKey(r.action_id, r.host_key), r);

    const results: boolean[] = [];
    const events: { at: string; kind: string; data: Record<string, unknown> }[] = [];
    /** Per action touched: the last state written and when. */
    const touched = new Map<string, { state: string; at: string }>();
    for (const { hostId, actionId, progress, at: when } of batch) {
      const at = when.toISOString();
      const host = hosts.get(hostId);
      const row = host ? rows.get(rowKey(actionId, host.key)) : undefined;
      if (!host || !row) {
        results.push(false);
        continue;
      }
      const list = JSON.parse(row.progress_json) as ActionProgress[];
      // A resent progress report (the agent did not see our answer) is recorded once.
      if (
        list.some(
          (p) =>
            p.state === progress.state &&
            p.at === progress.at &&
            p.percent === progress.percent &&
            p.phase === progress.phase,
        )
      ) {
        results.push(true);
        continue;
      }
      list.push(progress);
      const state = TERMINAL.has(row.state) ? row.state : progress.state;
      const next: ActionHostRow = {
        ...row,
        state,
        phase: progress.phase ?? row.phase,
        percent: progress.percent ?? row.percent,
        hresult: progress.hresult ?? row.hresult,
        message: progress.message ?? row.message,
        progress_json: JSON.stringify(list),
        updated_at: at,
      };
      await updateActionHost(trx, style, actionId, host.key, {
        state: next.state,
        phase: next.phase,
        percent: next.percent,
        hresult: next.hresult,
        message: next.message,
        progress_json: next.progress_json,
        updated_at: next.updated_at,
      });
      // A later report of the same host and action in this batch builds on this one.
      rows.set(rowKey(actionId, host.key), next);
      touched.set(actionId, { state, at });
      events.push({
        at,
        kind: 'action.progress',
        data: {
          action: actionId,
          host: host.name,
          state,
          phase: progress.phase ?? null,
          percent: progress.percent ?? null,
          // What an install action does now (its pass, the update under way) and how it ended.
          ...(progress.updateId ? { updateId: progress.updateId } : {}),
          ...(progress.message ? { message: progress.message } : {}),
          ...(progress.hresult ? { hresult: progress.hresult } : {}),
        },
      });
      results.push(true);
    }
    for (const [actionId, last] of touched) {
      // Only a host that just ended can end the action: reading every host's state on each
      // progress report made an action on 10,000 hosts cost 10,000² row reads.
      const open = TERMINAL.has(last.state) ? await openActionHost(trx, actionId) : true;
      await updateAction(
        trx,
        actionId,
        open
          ? { state: 'running' }
          : { state: (await anyActionHostFailed(trx, actionId)) ? 'failed' : 'done', finished_at: last.at },
      );
    }
    await appendEvents(trx, events);
    return results;
  });
}
