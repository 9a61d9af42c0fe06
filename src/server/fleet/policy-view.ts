/**
 * What the pure policy (src/domain/policy) needs from the store — rules, rings, promotion
 * overrides, catalog facts of the updates hosts reported — and the shape of the fleet view the
 * routes read (fleet-cache.ts builds it, keeping host rows between requests).
 */
import type { Kysely } from 'kysely';
import { SEVERITIES, type Severity } from '../../domain/update.ts';
import {
  DEFAULT_RING,
  type CatalogFacts,
  type HostFacts,
  type HostUpdateFacts,
  type Policy,
  type PromotionOverride,
  type Ring,
  type Rule,
  type ServerCacheState,
  type UpdateFacts,
} from '../../domain/policy/index.ts';
import type { Database } from '../../store/schema.ts';
import type { HostRow } from '../../store/server/fleet-repo.ts';

/** A host as the views read it (without its agent's facts and credential hash). */
export type FleetHost = Omit<HostRow, 'facts_json' | 'credential_hash' | 'inventory_digest'>;

/** A host × update row as the views read it: the policy's facts plus what the grids show. */
export interface FleetRow extends HostUpdateFacts {
  readonly kb: string | null;
  readonly title: string | null;
  readonly lastAttemptAt: string | null;
}

export interface FleetView {
  readonly policy: Policy;
  /** Every enrolled host (revoked ones too), sorted by key. */
  readonly hosts: readonly FleetHost[];
  /** By host key; `updates` are the host's rows. */
  readonly facts: ReadonlyMap<string, HostFacts>;
  /** By host key, sorted by update id. */
  readonly rows: ReadonlyMap<string, readonly FleetRow[]>;
  /** By host key: its rows whose last attempt failed with an HRESULT (hosts without any are absent). */
  readonly failed: ReadonlyMap<string, readonly FleetRow[]>;
  /** Facts of every update some host reported (unknown to the catalog: what its first reporter said). */
  readonly catalog: CatalogFacts;
  readonly rules: readonly Rule[];
  readonly rings: readonly Ring[];
}

/** The server's content cache state of an update's files (MISSING vs PENDING); default: not cached. */
export type CacheStateOf = (updateId: string) => ServerCacheState;

/**
 * Facts of an update the catalog does not know (a host reported it ahead of a sync): only the KB
 * and title that host reported.
 */
export function reportedOnlyFacts(
  updateId: string,
  kb: string | null,
  title: string | null,
  cache: ServerCacheState = 'not-cached',
): UpdateFacts {
  return {
    updateId,
    kbs: kb ? [kb] : [],
    title: title ?? '',
    classification: null,
    products: [],
    severity: null,
    releasedAt: null,
    cache,
  };
}

export async function loadRules(db: Kysely<Database>): Promise<Rule[]> {
  const rows = await db.selectFrom('rules').selectAll().orderBy('created_at').orderBy('id').execute();
  return rows.map((r) => ({
    ...(JSON.parse(r.spec_json) as Omit<Rule, 'id' | 'action'>),
    id: r.id,
    action: r.action as Rule['action'],
  }));
}

export async function loadRings(db: Kysely<Database>): Promise<Ring[]> {
  const rows = await db.selectFrom('rings').selectAll().orderBy('position').orderBy('name').execute();
  return rows.map((r) => ({ ...DEFAULT_RING, ...(JSON.parse(r.spec_json) as Omit<Ring, 'name'>), name: r.name }));
}

export async function loadOverrides(db: Kysely<Database>): Promise<PromotionOverride[]> {
  const rows = await db.selectFrom('promotion_overrides').selectAll().execute();
  return rows.map((r) => ({
    updateId: r.update_id,
    ring: r.ring,
    action: r.action as 'promote' | 'halt',
    by: r.by,
    at: r.at,
  }));
}

const isSeverity = (s: string | null): s is Severity => s !== null && (SEVERITIES as readonly string[]).includes(s);

/** Facts of these updates from the current catalog (the newest revision of each); unknown ids are absent. */
export async function catalogFacts(
  db: Kysely<Database>,
  updateIds: readonly string[],
  cacheStateOf: CacheStateOf,
): Promise<Map<string, UpdateFacts>> {
  const out = new Map<string, UpdateFacts>();
  const version = await db
    .selectFrom('catalog_versions')
    .select('id')
    .where('state', '=', 'current')
    .executeTakeFirst();
  if (!version || updateIds.length === 0) return out;
  for (let i = 0; i < updateIds.length; i += 500) {
    const ids = updateIds.slice(i, i + 500);
    const updates = await db
      .selectFrom('catalog_updates')
      .select([
        'revision_id',
        'update_id',
        'revision_number',
        'title',
        'kb',
        'msrc_severity',
        'creation_date',
        'release_date',
      ])
      .where('version_id', '=', version.id)
      .where('update_id', 'in', ids)
      .orderBy('revision_number')
      .execute();
    const newest = new Map(updates.map((u) => [u.update_id, u]));
    const revisions = [...newest.values()].map((u) => u.revision_id);
    const categories =
      revisions.length === 0
        ? []
        : await db
            .selectFrom('catalog_update_categories as uc')
            .leftJoin('catalog_categories as c', (j) =>
              j.onRef('c.category_id', '=', 'uc.category_id').onRef('c.version_id', '=', 'uc.version_id'),
            )
            .select(['uc.revision_id', 'uc.type', 'uc.category_id', 'c.name'])
            .where('uc.version_id', '=', version.id)
            .where('uc.revision_id', 'in', revisions)
            .execute();
    for (const u of newest.values()) {
      const mine = categories.filter((c) => c.revision_id === u.revision_id);
      out.set(u.update_id, {
        updateId: u.update_id,
        kbs: u.kb ? [u.kb] : [],
        title: u.title ?? '',
        classification: mine.find((c) => c.type === 'UpdateClassification')?.name ?? null,
        products: mine.filter((c) => c.type === 'Product').map((c) => c.name ?? c.category_id),
        severity: isSeverity(u.msrc_severity) ? u.msrc_severity : null,
        releasedAt: u.creation_date ?? u.release_date,
        cache: cacheStateOf(u.update_id),
      });
    }
  }
  return out;
}
