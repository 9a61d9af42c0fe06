/**
 * The audit log (who, when, what, from where) and the events outbox the console's live view
 * reads. Both are append-only and written inside the transaction of the change they describe, so
 * a change and its record commit together or not at all.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';

export interface AuditEntry {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly details: Readonly<Record<string, unknown>>;
  readonly ip: string | null;
}

export interface AuditRecord extends AuditEntry {
  readonly id: number;
}

export async function appendAudit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit')
    .values({
      at: entry.at,
      actor: entry.actor,
      action: entry.action,
      target: entry.target,
      details_json: JSON.stringify(entry.details),
      ip: entry.ip,
    })
    .execute();
}

export interface AuditQuery {
  readonly limit: number;
  /** Only entries with a smaller id (paging backwards from the newest). */
  readonly before?: number;
  readonly actor?: string;
  /** Exact action or a prefix ending in `.` (`rule.`). */
  readonly action?: string;
}

/** Newest first. */
export async function listAudit(db: Kysely<Database>, q: AuditQuery): Promise<AuditRecord[]> {
  let query = db.selectFrom('audit').selectAll().orderBy('id', 'desc').limit(q.limit);
  if (q.before !== undefined) query = query.where('id', '<', q.before);
  if (q.actor) query = query.where('actor', '=', q.actor);
  if (q.action)
    query = q.action.endsWith('.')
      ? query.where('action', 'like', `${q.action}%`)
      : query.where('action', '=', q.action);
  const rows = await query.execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    details: JSON.parse(r.details_json) as Record<string, unknown>,
    ip: r.ip,
  }));
}

// ------------------------------------------------------------------------------ events outbox

export interface ServerEvent {
  readonly id: number;
  readonly at: string;
  readonly kind: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export async function appendEvent(
  db: Kysely<Database>,
  at: string,
  kind: string,
  data: Readonly<Record<string, unknown>>,
): Promise<void> {
  await db
    .insertInto('events')
    .values({ at, kind, data_json: JSON.stringify(data) })
    .execute();
}

/** Several events in one statement, in this order (many agents' progress in one batch). */
export async function appendEvents(
  db: Kysely<Database>,
  events: readonly { readonly at: string; readonly kind: string; readonly data: Readonly<Record<string, unknown>> }[],
): Promise<void> {
  // 200 rows × 3 values per statement: under SQLite's and PostgreSQL's bound-parameter limits.
  for (let i = 0; i < events.length; i += 200) {
    await db
      .insertInto('events')
      .values(events.slice(i, i + 200).map((e) => ({ at: e.at, kind: e.kind, data_json: JSON.stringify(e.data) })))
      .execute();
  }
}

export async function eventsAfter(db: Kysely<Database>, afterId: number, limit: number): Promise<ServerEvent[]> {
  const rows = await db.selectFrom('events').selectAll().where('id', '>', afterId).orderBy('id').limit(limit).execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    kind: r.kind,
    data: JSON.parse(r.data_json) as Record<string, unknown>,
  }));
}

export async function latestEventId(db: Kysely<Database>): Promise<number> {
  const r = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirst();
  return Number(r?.id ?? 0);
}

/** Drops events older than `before` (the live view needs minutes of history, not months). */
export async function pruneEvents(db: Kysely<Database>, before: string): Promise<number> {
  const r = await db.deleteFrom('events').where('at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}
