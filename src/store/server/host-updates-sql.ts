/**
 * The SQL of the ingestion's hottest write: upserting a host's reported update rows, built as text
 * plus parameters (tested as text, run by fleet-repo.ts). Kysely's insert builder took longer to
 * turn 150 rows × 16 values into SQL than SQLite took to insert them (it parses and freezes every
 * value); here the text is made once per row count and dialect, and the parameters are one flat
 * array.
 */
import type { HostUpdatesTable } from '../schema-server.ts';

export type PlaceholderStyle = 'sqlite' | 'postgres';

/** Every column, in the order the parameters follow. */
export const HOST_UPDATE_COLUMNS = [
  'host_key',
  'update_id',
  'revision',
  'kb',
  'title',
  'applicability',
  'delivery',
  'decision',
  'decided_by',
  'deferred_until',
  'hresult',
  'attempts',
  'last_attempt_at',
  'installed_at',
  'reported_at',
  'report_json',
] as const satisfies readonly (keyof HostUpdatesTable)[];

/**
 * What a report replaces in an existing row: the agent's facts. title and the decision columns
 * belong to the server and stay.
 */
const REPORTED_COLUMNS = [
  'revision',
  'kb',
  'applicability',
  'delivery',
  'hresult',
  'attempts',
  'last_attempt_at',
  'installed_at',
  'reported_at',
  'report_json',
] as const satisfies readonly (typeof HOST_UPDATE_COLUMNS)[number][];

/** Rows per statement: 16 parameters each stays under SQLite's 32,766 and PostgreSQL's 65,535. */
export const UPSERT_CHUNK_ROWS = 500;

/** Texts kept: deltas change a few rows each, so a handful of row counts come back all the time. */
const TEXT_CACHE_SIZE = 64;
const texts = new Map<string, string>();

/**
 * `insert … values (…), (…) on conflict (host_key, update_id) do update set <reported columns>`
 * for `rows` (at most UPSERT_CHUNK_ROWS), with `?` (SQLite) or `$n` (PostgreSQL) placeholders.
 *
 * @example
 *   const { sql, parameters } = upsertHostUpdates(rows, 'sqlite');
 *   // sql: insert into "host_updates" ("host_key", …) values (?, …), (?, …) on conflict …
 */
export function upsertHostUpdates(
  rows: readonly HostUpdatesTable[],
  style: PlaceholderStyle,
): { readonly sql: string; readonly parameters: readonly unknown[] } {
  if (rows.length === 0 || rows.length > UPSERT_CHUNK_ROWS)
    throw new RangeError(`upsertHostUpdates takes 1 to ${UPSERT_CHUNK_ROWS} rows, not ${rows.length}`);
  const key = `${style}:${rows.length}`;
  let sql = texts.get(key);
  if (sql === undefined) {
    const width = HOST_UPDATE_COLUMNS.length;
    const tuple = (r: number): string =>
      `(${HOST_UPDATE_COLUMNS.map((_, c) => (style === 'sqlite' ? '?' : `$${r * width + c + 1}`)).join(', ')})`;
    sql =
      `insert into "host_updates" (${HOST_UPDATE_COLUMNS.map((c) => `"${c}"`).join(', ')}) values ` +
      Array.from({ length: rows.length }, (_, r) => tuple(r)).join(', ') +
      ` on conflict ("host_key", "update_id") do update set ` +
      REPORTED_COLUMNS.map((c) => `"${c}" = excluded."${c}"`).join(', ');
    if (texts.size >= TEXT_CACHE_SIZE) texts.delete(texts.keys().next().value!);
    texts.set(key, sql);
  }
  const parameters: unknown[] = [];
  for (const row of rows) for (const c of HOST_UPDATE_COLUMNS) parameters.push(row[c]);
  return { sql, parameters };
}
