/**
 * The fleet's rows: enrolled hosts, their per-update state as the agents reported it, and actions
 * with their per-host progress. Plain queries; the server's gateway adapter and API routes put
 * them together (src/server/fleet/). Functions take a Kysely or a transaction.
 */
import { CompiledQuery, type Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import {
  HOST_UPDATE_COLUMNS,
  UPSERT_CHUNK_ROWS,
  upsertHostUpdates,
  type PlaceholderStyle,
} from './host-updates-sql.ts';
import type { ActionHostsTable, ActionsTable, HostUpdatesTable, HostsTable } from '../schema-server.ts';

export type HostRow = HostsTable;
export type HostUpdateRow = HostUpdatesTable;
export type ActionRow = ActionsTable;
export type ActionHostRow = ActionHostsTable;

export const hostKey = (name: string): string => name.toLowerCase();

export async function findHostById(db: Kysely<Database>, id: string): Promise<HostRow | undefined> {
  return db.selectFrom('hosts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Hosts by id, for many requests at once (batch-loader.ts). */
export async function findHostsByIds(db: Kysely<Database>, ids: readonly string[]): Promise<HostRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('hosts').selectAll().where('id', 'in', ids).execute();
}

export async function findHostByName(db: Kysely<Database>, name: string): Promise<HostRow | undefined> {
  return db.selectFrom('hosts').selectAll().where('key', '=', hostKey(name)).executeTakeFirst();
}

export async function listHostRows(db: Kysely<Database>): Promise<HostRow[]> {
  return db.selectFrom('hosts').selectAll().orderBy('key').execute();
}

export async function insertHost(db: Kysely<Database>, row: HostRow): Promise<void> {
  await db.insertInto('hosts').values(row).execute();
}

export async function updateHost(db: Kysely<Database>, key: string, changes: Partial<HostRow>): Promise<void> {
  await db.updateTable('hosts').set(changes).where('key', '=', key).execute();
}

export async function hostUpdateRows(db: Kysely<Database>, key?: string): Promise<HostUpdateRow[]> {
  let q = db.selectFrom('host_updates').selectAll();
  if (key !== undefined) q = q.where('host_key', '=', key);
  return q.orderBy('host_key').orderBy('update_id').execute();
}

/** The rows of one host for these update ids (lower-case) only: what a delta report touches. */
export async function hostUpdateRowsOf(
  db: Kysely<Database>,
  key: string,
  updateIds: readonly string[],
): Promise<HostUpdateRow[]> {
  const out: HostUpdateRow[] = [];
  for (let i = 0; i < updateIds.length; i += 500)
    out.push(
      ...(await db
        .selectFrom('host_updates')
        .selectAll()
        .where('host_key', '=', key)
        .where('update_id', 'in', updateIds.slice(i, i + 500))
        .execute()),
    );
  return out;
}

/** A host × update row without the agent's whole report (report_json): what the policy and views read. */
export type FleetUpdateRow = Omit<HostUpdateRow, 'report_json'>;

const FLEET_UPDATE_COLUMNS = HOST_UPDATE_COLUMNS.filter(
  (c): c is Exclude<(typeof HOST_UPDATE_COLUMNS)[number], 'report_json'> => c !== 'report_json',
);

/**
 * Every host × update row of the fleet, without report_json: the policy view reads the whole
 * fleet on each request, and the reports (a few hundred bytes per row, 300,000 rows for 10,000
 * hosts) were most of what it read and then threw away.
 */
export async function fleetUpdateRows(db: Kysely<Database>): Promise<FleetUpdateRow[]> {
  return db.selectFrom('host_updates').select(FLEET_UPDATE_COLUMNS).orderBy('host_key').orderBy('update_id').execute();
}

/** The rows of these hosts, without report_json (the promotion evidence of one ring). */
export async function fleetUpdateRowsOf(db: Kysely<Database>, keys: readonly string[]): Promise<FleetUpdateRow[]> {
  if (keys.length === 0) return [];
  return db
    .selectFrom('host_updates')
    .select(FLEET_UPDATE_COLUMNS)
    .where('host_key', 'in', keys)
    .orderBy('host_key')
    .orderBy('update_id')
    .execute();
}

/** What an agent's policy is decided from: the updates these hosts need (by host id). */
/**
 * The ids of the updates each host needs, unordered (the caller sorts: an ORDER BY cost SQLite a
 * temporary B-tree per batch). Only the two columns the policy decides on: at 10,000 hosts × 100
 * needed updates, reading kb and title too took longer than deciding.
 */
export async function neededUpdateIdsOf(
  db: Kysely<Database>,
  hostIds: readonly string[],
): Promise<{ host_id: string; update_id: string }[]> {
  if (hostIds.length === 0) return [];
  return db
    .selectFrom('host_updates')
    .innerJoin('hosts', 'hosts.key', 'host_updates.host_key')
    .select(['hosts.id as host_id', 'host_updates.update_id'])
    .where('hosts.id', 'in', hostIds)
    .where('host_updates.applicability', '=', 'needed')
    .execute();
}

/** What a host reported of these updates (kb, title): the facts of updates the catalog does not know. */
export async function reportedFactsOf(
  db: Kysely<Database>,
  hostId: string,
  updateIds: readonly string[],
): Promise<{ update_id: string; kb: string | null; title: string | null }[]> {
  if (updateIds.length === 0) return [];
  return db
    .selectFrom('host_updates')
    .innerJoin('hosts', 'hosts.key', 'host_updates.host_key')
    .select(['host_updates.update_id', 'host_updates.kb', 'host_updates.title'])
    .where('hosts.id', '=', hostId)
    .where('host_updates.update_id', 'in', updateIds)
    .execute();
}

/** Each host's last applied report seq, by host id: the change marker of its reported updates. */
export async function reportSeqsOf(db: Kysely<Database>, hostIds: readonly string[]): Promise<Map<string, number>> {
  if (hostIds.length === 0) return new Map();
  const rows = await db.selectFrom('hosts').select(['id', 'report_seq']).where('id', 'in', hostIds).execute();
  return new Map(rows.map((r) => [r.id, Number(r.report_seq)]));
}

/**
 * Writes a host's changed rows (insert, or replace the reported columns) and deletes the removed
 * ones. `style` is the store's dialect (the upsert's text is built by hand: host-updates-sql.ts).
 */
export async function replaceHostUpdates(
  db: Kysely<Database>,
  style: PlaceholderStyle,
  key: string,
  rows: readonly HostUpdateRow[],
  removed: readonly string[],
): Promise<void> {
  for (let i = 0; i < removed.length; i += 500) {
    await db
      .deleteFrom('host_updates')
      .where('host_key', '=', key)
      .where('update_id', 'in', removed.slice(i, i + 500))
      .execute();
  }
  for (let i = 0; i < rows.length; i += UPSERT_CHUNK_ROWS) {
    const { sql, parameters } = upsertHostUpdates(rows.slice(i, i + UPSERT_CHUNK_ROWS), style);
    await db.executeQuery(CompiledQuery.raw(sql, [...parameters]));
  }
}

// ------------------------------------------------------------------------------ actions

export async function insertAction(
  db: Kysely<Database>,
  row: ActionRow,
  hostKeys: readonly string[],
  at: string,
): Promise<void> {
  await db.insertInto('actions').values(row).execute();
  for (let i = 0; i < hostKeys.length; i += 500) {
    await db
      .insertInto('action_hosts')
      .values(
        hostKeys.slice(i, i + 500).map((k) => ({
          action_id: row.id,
          host_key: k,
          state: 'queued',
          phase: null,
          percent: null,
          hresult: null,
          message: null,
          progress_json: '[]',
          updated_at: at,
        })),
      )
      .execute();
  }
}

export async function findAction(db: Kysely<Database>, id: string): Promise<ActionRow | undefined> {
  return db.selectFrom('actions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function actionHostRows(
  db: Kysely<Database>,
  actionId: string,
): Promise<(ActionHostRow & { name: string | null })[]> {
  return db
    .selectFrom('action_hosts')
    .leftJoin('hosts', 'hosts.key', 'action_hosts.host_key')
    .selectAll('action_hosts')
    .select('hosts.name')
    .where('action_id', '=', actionId)
    .orderBy('action_hosts.host_key')
    .execute();
}

export async function listActions(db: Kysely<Database>, limit: number, before?: string): Promise<ActionRow[]> {
  let q = db.selectFrom('actions').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit);
  if (before) q = q.where('created_at', '<', before);
  return q.execute();
}

/** Actions these hosts have not yet acknowledged receiving, oldest first, by host id (each row says whose). */
export async function queuedActionsOfHosts(
  db: Kysely<Database>,
  hostIds: readonly string[],
): Promise<(ActionRow & { host_id: string })[]> {
  if (hostIds.length === 0) return [];
  return db
    .selectFrom('actions')
    .innerJoin('action_hosts', 'action_hosts.action_id', 'actions.id')
    .innerJoin('hosts', 'hosts.key', 'action_hosts.host_key')
    .selectAll('actions')
    .select('hosts.id as host_id')
    .where('hosts.id', 'in', hostIds)
    .where('action_hosts.state', '=', 'queued')
    .orderBy('actions.created_at')
    .orderBy('actions.id')
    .execute();
}

/** What a progress report changes in an action's host row, in the order of the statement's parameters. */
const ACTION_HOST_PROGRESS_COLUMNS = [
  'state',
  'phase',
  'percent',
  'hresult',
  'message',
  'progress_json',
  'updated_at',
] as const satisfies readonly (keyof ActionHostRow)[];
export type ActionHostProgress = Pick<ActionHostRow, (typeof ACTION_HOST_PROGRESS_COLUMNS)[number]>;

/**
 * `update "action_hosts" set "state" = ?, … where "action_id" = ? and "host_key" = ?`, with `?`
 * (SQLite) or `$n` (PostgreSQL) placeholders. Built by hand once per dialect: an action's
 * `received` reports from 10,000 agents are 10,000 of these, and Kysely compiled each afresh.
 */
export function updateActionHostSql(style: PlaceholderStyle): string {
  const mark = (i: number): string => (style === 'sqlite' ? '?' : `$${i + 1}`);
  const n = ACTION_HOST_PROGRESS_COLUMNS.length;
  return (
    `update "action_hosts" set ${ACTION_HOST_PROGRESS_COLUMNS.map((c, i) => `"${c}" = ${mark(i)}`).join(', ')}` +
    ` where "action_id" = ${mark(n)} and "host_key" = ${mark(n + 1)}`
  );
}
const updateActionHostTexts = { sqlite: updateActionHostSql('sqlite'), postgres: updateActionHostSql('postgres') };

export async function updateActionHost(
  db: Kysely<Database>,
  style: PlaceholderStyle,
  actionId: string,
  key: string,
  changes: ActionHostProgress,
): Promise<void> {
  const parameters = [...ACTION_HOST_PROGRESS_COLUMNS.map((c) => changes[c]), actionId, key];
  await db.executeQuery(CompiledQuery.raw(updateActionHostTexts[style], parameters));
}

/** True while some host of the action has not ended (succeeded or failed). */
export async function openActionHost(db: Kysely<Database>, actionId: string): Promise<boolean> {
  const row = await db
    .selectFrom('action_hosts')
    .select('host_key')
    .where('action_id', '=', actionId)
    .where('state', 'not in', ['succeeded', 'failed'])
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function anyActionHostFailed(db: Kysely<Database>, actionId: string): Promise<boolean> {
  const row = await db
    .selectFrom('action_hosts')
    .select('host_key')
    .where('action_id', '=', actionId)
    .where('state', '=', 'failed')
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function updateAction(db: Kysely<Database>, id: string, changes: Partial<ActionRow>): Promise<void> {
  await db.updateTable('actions').set(changes).where('id', '=', id).execute();
}

/** The rows of these hosts (by key) in these actions: the progress of many agents read at once. */
export async function actionHostsOf(
  db: Kysely<Database>,
  actionIds: readonly string[],
  keys: readonly string[],
): Promise<ActionHostRow[]> {
  if (actionIds.length === 0 || keys.length === 0) return [];
  return db
    .selectFrom('action_hosts')
    .selectAll()
    .where('action_id', 'in', actionIds)
    .where('host_key', 'in', keys)
    .execute();
}
