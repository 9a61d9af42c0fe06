/**
 * Reads the current catalog: status and search (one update's whole record: update-details.ts). Everything here reads only the version whose
 * state is `current` (src/store/catalog-repo.ts), so an import in progress is invisible.
 *
 * Text search uses SQLite's FTS5 index when the store is SQLite and, on PostgreSQL, one
 * case-insensitive regular expression per word that matches what FTS5 would: the word's letter and
 * digit runs in a row, the last one as a prefix, starting a word (`\mcumul`, `\mx64[^[:alnum:]]+bas`).
 * Both match every word of the query. A portable LIKE path (substrings) is kept for other SQL
 * engines. The text-building parts are pure functions, tested as text.
 */
import { SqliteAdapter, sql, type Kysely } from 'kysely';
import { PatchlineError } from '../domain/errors.ts';
import { normalizeKb } from '../domain/filters.ts';
import type { Database } from '../store/schema.ts';
import type { CatalogVersionState } from '../store/schema-catalog.ts';

export const DEFAULT_SEARCH_LIMIT = 50;
/** Supersedence chains longer than this are cut (real chains of monthly CUs reach ~40). */
export const MAX_CHAIN_DEPTH = 100;
/** Category and detectoid entries are catalog plumbing, not installable updates. */
const HIDDEN_UPDATE_TYPES = ['Category', 'Detectoid'];

export interface CatalogVersionInfo {
  readonly id: number;
  readonly state: CatalogVersionState;
  readonly packageId: string | null;
  readonly creationDate: string | null;
  readonly source: string;
  readonly signerSubject: string | null;
  readonly startedAt: string;
  readonly importedAt: string | null;
  readonly updates: number;
  readonly files: number;
  readonly shards: number;
}

export interface CatalogStatus {
  readonly current: CatalogVersionInfo | null;
  readonly previous: CatalogVersionInfo | null;
  /** An import running now, or one that was killed (the next import removes it). */
  readonly importing: CatalogVersionInfo | null;
}

export interface SearchCriteria {
  readonly kb?: string;
  readonly text?: string;
  readonly product?: string;
  readonly classification?: string;
  readonly severity?: string;
  /** Release date bounds, inclusive: "2026-10-01" or a full ISO timestamp. */
  readonly since?: string;
  readonly until?: string;
  readonly limit?: number;
  /** Also list category/detectoid entries and updates that only exist inside a bundle. */
  readonly all?: boolean;
  /**
   * Text matching: `fts` (SQLite's FTS5 index; the default on SQLite), `words` (PostgreSQL regular
   * expressions, the same matches as FTS5; the default on PostgreSQL) or `like` (portable substrings).
   */
  readonly textIndex?: 'fts' | 'words' | 'like';
}

export interface CatalogHit {
  readonly updateId: string;
  readonly revisionId: number;
  readonly revisionNumber: number;
  readonly kb: string | null;
  readonly title: string | null;
  readonly classification: string | null;
  readonly products: readonly string[];
  readonly severity: string | null;
  readonly releaseDate: string | null;
  readonly updateType: string | null;
}

/**
 * Builds an FTS5 MATCH expression: every word, each quoted (so `-` or `:` are not operators) and
 * as a prefix (`"cumul"*`), so typing the start of a word finds it, as LIKE would.
 */
export function ftsQuery(text: string): string | null {
  const words = words_(text);
  return words.length === 0 ? null : words.map((w) => `"${w.replace(/"/g, '""')}"*`).join(' ');
}

/**
 * PostgreSQL `~*` patterns, one per word, matching as FTS5's unicode61 tokens do: the word's runs
 * of letters and digits, consecutive, at the start of a word, the last one as a prefix. A word
 * with no letter or digit matches anything (FTS5 has no token to look for either).
 *
 * @example wordPatterns('x64-based KB50') // ['\mx64[^[:alnum:]]+based', '\mKB50']
 */
export function wordPatterns(text: string): string[] {
  return words_(text).flatMap((w) => {
    const tokens = w.match(/[\p{L}\p{N}]+/gu);
    return tokens ? [`\\m${tokens.join('[^[:alnum:]]+')}`] : [];
  });
}

/** LIKE patterns for the portable path: one per word, with %, _ and \ escaped (ESCAPE '\'). */
export function likePatterns(text: string): string[] {
  return words_(text).map((w) => `%${w.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
}

function words_(text: string): string[] {
  return text
    .split(/\s+/)
    .map((w) => w.trim())
    .filter((w) => w !== '');
}

/**
 * Turns a user's date bound into an ISO string comparable with stored ISO timestamps.
 * A bare date as `until` means the end of that day.
 *
 * @example dateBound('2026-10-31', 'until') // '2026-10-31T23:59:59.999Z'
 */
export function dateBound(value: string, side: 'since' | 'until'): string {
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return side === 'since' ? `${v}T00:00:00Z` : `${v}T23:59:59.999Z`;
  const ms = Date.parse(v);
  if (!Number.isFinite(ms))
    throw new PatchlineError('CATALOG_BAD_DATE', `"${value}" is not a date; use YYYY-MM-DD (e.g. 2026-10-01).`, {
      exitCode: 64,
    });
  return new Date(ms).toISOString();
}

const isSqlite = (db: Kysely<Database>): boolean => db.getExecutor().adapter instanceof SqliteAdapter;

function toVersionInfo(r: Database['catalog_versions'] & { id: number }): CatalogVersionInfo {
  return {
    id: r.id,
    state: r.state,
    packageId: r.package_id,
    creationDate: r.creation_date,
    source: r.source,
    signerSubject: r.signer_subject,
    startedAt: r.started_at,
    importedAt: r.imported_at,
    updates: r.updates_count,
    files: r.files_count,
    shards: r.shards_count,
  };
}

/** Which catalog versions exist. */
export async function catalogStatus(db: Kysely<Database>): Promise<CatalogStatus> {
  const rows = await db.selectFrom('catalog_versions').selectAll().orderBy('id', 'desc').execute();
  const pick = (state: CatalogVersionState) => {
    const row = rows.find((r) => r.state === state);
    return row ? toVersionInfo(row as never) : null;
  };
  return { current: pick('current'), previous: pick('previous'), importing: pick('importing') };
}

/** The current version id; a helpful error when nothing was imported yet. */
export async function currentVersionId(db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('catalog_versions').select('id').where('state', '=', 'current').executeTakeFirst();
  if (!row) {
    throw new PatchlineError(
      'CATALOG_EMPTY',
      'No catalog has been imported yet. Run `patchline catalog sync` to download wsusscn2.cab, or `patchline catalog import FILE.cab` to import one you carried in.',
    );
  }
  return row.id;
}

/**
 * Searches the current catalog. Every criterion given must match.
 *
 * @example await searchCatalog(db, { text: 'cumulative update', product: 'Windows Server 2022', since: '2026-10-01' })
 */
export async function searchCatalog(db: Kysely<Database>, criteria: SearchCriteria): Promise<CatalogHit[]> {
  const versionId = await currentVersionId(db);
  let q = db.selectFrom('catalog_updates as u').where('u.version_id', '=', versionId);
  if (criteria.kb) q = q.where('u.kb', '=', normalizeKb(criteria.kb));
  if (criteria.severity) q = q.where(sql`lower(u.msrc_severity)`, '=', criteria.severity.toLowerCase());
  if (criteria.since) q = q.where('u.release_date', '>=', dateBound(criteria.since, 'since'));
  if (criteria.until) q = q.where('u.release_date', '<=', dateBound(criteria.until, 'until'));
  if (criteria.text) {
    const mode = criteria.textIndex ?? (isSqlite(db) ? 'fts' : 'words');
    const match = mode === 'fts' ? ftsQuery(criteria.text) : null;
    if (mode === 'words') {
      for (const pattern of wordPatterns(criteria.text)) q = q.where(sql<boolean>`u.title ~* ${pattern}`);
    } else if (match !== null) {
      q = q.where(
        'u.id',
        'in',
        sql<number>`(SELECT rowid FROM catalog_updates_fts WHERE catalog_updates_fts MATCH ${match})`,
      );
    } else {
      for (const pattern of likePatterns(criteria.text))
        q = q.where(sql`lower(u.title)`, 'like', sql`lower(${pattern}) ESCAPE '\\'`);
    }
  }
  for (const [type, name] of [
    ['Product', criteria.product],
    ['UpdateClassification', criteria.classification],
  ] as const) {
    if (!name) continue;
    q = q.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('catalog_update_categories as uc')
          .innerJoin('catalog_categories as c', (j) =>
            j.onRef('c.version_id', '=', 'uc.version_id').onRef('c.category_id', '=', 'uc.category_id'),
          )
          .select(sql`1`.as('one'))
          .whereRef('uc.version_id', '=', 'u.version_id')
          .whereRef('uc.revision_id', '=', 'u.revision_id')
          .where('uc.type', '=', type)
          .where(sql`lower(c.name)`, '=', name.toLowerCase()),
      ),
    );
  }
  if (!criteria.all) {
    q = q.where((eb) => eb.or([eb('u.update_type', 'is', null), eb('u.update_type', 'not in', HIDDEN_UPDATE_TYPES)]));
    q = q.where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('catalog_bundles as b')
            .select(sql`1`.as('one'))
            .whereRef('b.version_id', '=', 'u.version_id')
            .whereRef('b.member_revision_id', '=', 'u.revision_id'),
        ),
      ),
    );
  }
  const rows = await q
    .select([
      'u.update_id',
      'u.revision_id',
      'u.revision_number',
      'u.kb',
      'u.title',
      'u.msrc_severity',
      'u.release_date',
      'u.update_type',
    ])
    .orderBy('u.release_date', 'desc')
    .orderBy('u.revision_id', 'desc')
    .limit(criteria.limit ?? DEFAULT_SEARCH_LIMIT)
    .execute();
  const cats = await categoriesOf(
    db,
    versionId,
    rows.map((r) => r.revision_id),
  );
  return rows.map((r) => hitOf(r, cats.get(r.revision_id) ?? []));
}

type Category = { id: string; type: string; name: string | null };

/** A catalog_updates row with its categories, as search lists it (and show starts from). */
export function hitOf(
  r: Pick<
    Database['catalog_updates'],
    'update_id' | 'revision_id' | 'revision_number' | 'kb' | 'title' | 'msrc_severity' | 'release_date' | 'update_type'
  >,
  categories: readonly Category[],
): CatalogHit {
  return {
    updateId: r.update_id,
    revisionId: r.revision_id,
    revisionNumber: r.revision_number,
    kb: r.kb,
    title: r.title,
    classification: categories.find((c) => c.type === 'UpdateClassification')?.name ?? null,
    products: categories.filter((c) => c.type === 'Product').map((c) => c.name ?? c.id),
    severity: r.msrc_severity,
    releaseDate: r.release_date,
    updateType: r.update_type,
  };
}

/** The categories (products, classifications) of these revisions, by revision id. */
export async function categoriesOf(db: Kysely<Database>, versionId: number, revisionIds: readonly number[]) {
  const out = new Map<number, Category[]>();
  if (revisionIds.length === 0) return out;
  const rows = await db
    .selectFrom('catalog_update_categories as uc')
    .leftJoin('catalog_categories as c', (j) =>
      j.onRef('c.version_id', '=', 'uc.version_id').onRef('c.category_id', '=', 'uc.category_id'),
    )
    .select(['uc.revision_id', 'uc.category_id', 'uc.type', 'c.name'])
    .where('uc.version_id', '=', versionId)
    .where('uc.revision_id', 'in', [...revisionIds])
    .execute();
  for (const r of rows) {
    const list = out.get(r.revision_id) ?? [];
    list.push({ id: r.category_id, type: r.type, name: r.name ?? null });
    out.set(r.revision_id, list);
  }
  return out;
}

/**
 * The category names of one type in the current catalog ("Product": "Windows Server 2022" …;
 * "UpdateClassification": "Security Updates" …), sorted: lets `catalog search` refuse a misspelt
 * name instead of answering "No updates match".
 */
export async function categoryNames(db: Kysely<Database>, type: 'Product' | 'UpdateClassification'): Promise<string[]> {
  const versionId = await currentVersionId(db);
  const rows = await db
    .selectFrom('catalog_categories')
    .select('name')
    .distinct()
    .where('version_id', '=', versionId)
    .where('type', '=', type)
    .where('name', 'is not', null)
    .execute();
  return rows.map((r) => r.name!).sort();
}
