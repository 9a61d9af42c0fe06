/**
 * One update's whole record in the current catalog (`patchline catalog show`, the console's update
 * page): its facts, categories, prerequisites, bundle, supersedence chains both ways, payload files
 * and titles per language. Like query.ts, it reads only the version marked `current`.
 */
import type { Kysely } from 'kysely';
import { normalizeKb } from '../domain/filters.ts';
import type { Database } from '../store/schema.ts';
import { categoriesOf, currentVersionId, hitOf, MAX_CHAIN_DEPTH, type CatalogHit } from './query.ts';

export interface RelatedUpdate {
  readonly updateId: string;
  readonly revisionId: number | null;
  readonly kb: string | null;
  /** null when the catalog does not hold the referenced update. */
  readonly title: string | null;
}

export interface ChainLink extends RelatedUpdate {
  /** 1 = directly, 2 = through one intermediate, … */
  readonly depth: number;
}

export interface PrerequisiteGroup {
  /** `all`: every update listed is required; `oneOf`: any one of them satisfies it. */
  readonly kind: 'all' | 'oneOf';
  readonly updates: readonly RelatedUpdate[];
}

export interface PayloadFile {
  readonly id: string;
  readonly fileName: string | null;
  readonly size: number | null;
  readonly sha1: string;
  readonly sha256: string | null;
  readonly url: string | null;
}

export interface CatalogUpdateDetails extends CatalogHit {
  readonly description: string | null;
  readonly categories: readonly { readonly id: string; readonly type: string; readonly name: string | null }[];
  readonly creationDate: string | null;
  readonly isBundle: boolean;
  readonly isLeaf: boolean;
  readonly rebootBehavior: string | null;
  readonly impact: string | null;
  readonly browseOnly: boolean;
  readonly maxDownloadSize: number | null;
  readonly supportUrl: string | null;
  readonly moreInfoUrl: string | null;
  /** Every MoreInfoUrl of the l/ blob, in order. */
  readonly moreInfoUrls: readonly string[];
  /** The CVEs the update fixes (x/ CveID). */
  readonly cveIds: readonly string[];
  readonly securityBulletinId: string | null;
  readonly prerequisites: readonly PrerequisiteGroup[];
  readonly bundleMembers: readonly RelatedUpdate[];
  readonly bundledBy: readonly RelatedUpdate[];
  readonly supersedes: readonly ChainLink[];
  readonly supersededBy: readonly ChainLink[];
  readonly files: readonly PayloadFile[];
  readonly titles: readonly { readonly language: string; readonly title: string | null }[];
}
/**
 * Everything the current catalog knows about one update, named by UpdateID (GUID) or KB
 * ("KB5044444" / "5044444"). A KB can name several updates (one per product), so this returns
 * a list; empty when nothing matches.
 */
export async function showUpdate(db: Kysely<Database>, idOrKb: string): Promise<CatalogUpdateDetails[]> {
  const versionId = await currentVersionId(db);
  const key = idOrKb.trim().replace(/[{}]/g, '').toLowerCase();
  const isGuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(key);
  let q = db.selectFrom('catalog_updates').selectAll().where('version_id', '=', versionId);
  q = isGuid ? q.where('update_id', '=', key) : q.where('kb', '=', normalizeKb(key));
  const rows = await q.orderBy('revision_id', 'desc').execute();
  const cats = await categoriesOf(
    db,
    versionId,
    rows.map((r) => r.revision_id),
  );
  const out: CatalogUpdateDetails[] = [];
  for (const r of rows) {
    const mine = cats.get(r.revision_id) ?? [];
    out.push({
      ...hitOf(r, mine),
      description: r.description,
      categories: mine,
      creationDate: r.creation_date,
      isBundle: r.is_bundle === 1,
      isLeaf: r.is_leaf === 1,
      rebootBehavior: r.reboot_behavior,
      impact: r.impact,
      browseOnly: r.browse_only === 1,
      maxDownloadSize: r.max_download_size,
      supportUrl: r.support_url,
      moreInfoUrl: r.more_info_url,
      moreInfoUrls: jsonList(r.more_info_urls) ?? (r.more_info_url ? [r.more_info_url] : []),
      cveIds: jsonList(r.cve_ids) ?? [],
      securityBulletinId: r.security_bulletin_id,
      prerequisites: await prerequisitesOf(db, versionId, r.revision_id),
      bundleMembers: await bundleSide(db, versionId, r.revision_id, 'members'),
      bundledBy: await bundleSide(db, versionId, r.revision_id, 'bundles'),
      supersedes: await chain(db, versionId, r.revision_id, 'older'),
      supersededBy: await chain(db, versionId, r.revision_id, 'newer'),
      files: await filesOf(db, versionId, r.revision_id),
      titles: await db
        .selectFrom('catalog_titles')
        .select(['language', 'title'])
        .where('version_id', '=', versionId)
        .where('revision_id', '=', r.revision_id)
        .orderBy('language')
        .execute(),
    });
  }
  return out;
}

/** A JSON array-of-strings column; null when empty or not an array (an older import). */
function jsonList(value: string | null): string[] | null {
  if (!value) return null;
  const parsed: unknown = JSON.parse(value);
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : null;
}

async function prerequisitesOf(
  db: Kysely<Database>,
  versionId: number,
  revisionId: number,
): Promise<PrerequisiteGroup[]> {
  const rows = await db
    .selectFrom('catalog_prerequisites')
    .select(['or_group', 'prerequisite_update_id'])
    .where('version_id', '=', versionId)
    .where('revision_id', '=', revisionId)
    .execute();
  const resolved = await byUpdateIds(
    db,
    versionId,
    rows.map((r) => r.prerequisite_update_id),
  );
  const groups: PrerequisiteGroup[] = [];
  const plain = rows.filter((r) => r.or_group === null).map((r) => resolved.get(r.prerequisite_update_id)!);
  if (plain.length > 0) groups.push({ kind: 'all', updates: plain });
  const orIds = [...new Set(rows.filter((r) => r.or_group !== null).map((r) => r.or_group as number))].sort(
    (a, b) => a - b,
  );
  for (const g of orIds)
    groups.push({
      kind: 'oneOf',
      updates: rows.filter((r) => r.or_group === g).map((r) => resolved.get(r.prerequisite_update_id)!),
    });
  return groups;
}

/** Resolves update GUIDs to titles; unknown ids come back with null title (detectoids often are). */
async function byUpdateIds(
  db: Kysely<Database>,
  versionId: number,
  ids: readonly string[],
): Promise<Map<string, RelatedUpdate>> {
  const out = new Map<string, RelatedUpdate>();
  for (const id of ids) out.set(id, { updateId: id, revisionId: null, kb: null, title: null });
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('catalog_updates')
    .select(['update_id', 'revision_id', 'kb', 'title'])
    .where('version_id', '=', versionId)
    .where('update_id', 'in', [...new Set(ids)])
    .orderBy('revision_number', 'asc')
    .execute();
  // Ascending revision number: the newest revision of an id wins.
  for (const r of rows)
    out.set(r.update_id, { updateId: r.update_id, revisionId: r.revision_id, kb: r.kb, title: r.title });
  return out;
}

async function byRevisions(db: Kysely<Database>, versionId: number, revs: readonly number[]): Promise<RelatedUpdate[]> {
  if (revs.length === 0) return [];
  const rows = await db
    .selectFrom('catalog_updates')
    .select(['update_id', 'revision_id', 'kb', 'title'])
    .where('version_id', '=', versionId)
    .where('revision_id', 'in', [...revs])
    .execute();
  const byRev = new Map(rows.map((r) => [r.revision_id, r]));
  return revs.map((rev) => {
    const r = byRev.get(rev);
    return r
      ? { updateId: r.update_id, revisionId: rev, kb: r.kb, title: r.title }
      : { updateId: '', revisionId: rev, kb: null, title: null };
  });
}

/** Follows supersedence: `older` = what this supersedes (transitively), `newer` = what supersedes it. */
async function chain(
  db: Kysely<Database>,
  versionId: number,
  start: number,
  direction: 'older' | 'newer',
): Promise<ChainLink[]> {
  const seen = new Set<number>([start]);
  const out: ChainLink[] = [];
  let frontier = [start];
  for (let depth = 1; depth <= MAX_CHAIN_DEPTH && frontier.length > 0; depth++) {
    const rows =
      direction === 'older'
        ? await db
            .selectFrom('catalog_supersedence')
            .select('revision_id as rev')
            .where('version_id', '=', versionId)
            .where('superseding_revision_id', 'in', frontier)
            .execute()
        : await db
            .selectFrom('catalog_supersedence')
            .select('superseding_revision_id as rev')
            .where('version_id', '=', versionId)
            .where('revision_id', 'in', frontier)
            .execute();
    const next = [...new Set(rows.map((r) => r.rev))].filter((rev) => !seen.has(rev));
    next.forEach((rev) => seen.add(rev));
    for (const related of await byRevisions(db, versionId, next)) out.push({ ...related, depth });
    frontier = next;
  }
  return out;
}

async function filesOf(db: Kysely<Database>, versionId: number, revisionId: number): Promise<PayloadFile[]> {
  const rows = await db
    .selectFrom('catalog_update_files as uf')
    .leftJoin('catalog_files as f', (j) =>
      j.onRef('f.version_id', '=', 'uf.version_id').onRef('f.file_id', '=', 'uf.file_id'),
    )
    .select(['uf.file_id', 'f.file_name', 'f.size', 'f.sha256', 'f.url'])
    .where('uf.version_id', '=', versionId)
    .where('uf.revision_id', '=', revisionId)
    .execute();
  return rows.map((r) => ({
    id: r.file_id,
    fileName: r.file_name ?? null,
    size: r.size ?? null,
    sha1: r.file_id,
    sha256: r.sha256 ?? null,
    url: r.url ?? null,
  }));
}

/** The bundle's members (`members`) or the bundles holding this revision (`bundles`). */
async function bundleSide(
  db: Kysely<Database>,
  versionId: number,
  revisionId: number,
  side: 'members' | 'bundles',
): Promise<RelatedUpdate[]> {
  const [mine, theirs] =
    side === 'members'
      ? (['bundle_revision_id', 'member_revision_id'] as const)
      : (['member_revision_id', 'bundle_revision_id'] as const);
  const rows = await db
    .selectFrom('catalog_bundles')
    .select(`${theirs} as rev`)
    .where('version_id', '=', versionId)
    .where(mine, '=', revisionId)
    .execute();
  return byRevisions(
    db,
    versionId,
    rows.map((b) => b.rev),
  );
}
