/**
 * The fleet as the policy sees it, kept between requests and checked against the store on every
 * call (docs/decisions.md, "Console grids at fleet size"). Each call reads the hosts table (one
 * light row per host) and the small policy tables; a host's update rows are read again only when
 * its marker changed — its id (a forgotten host that enrolls again is a new one), its report_seq
 * (the gateway writes rows and report_seq in one transaction), its name, ring, revocation and
 * last scan. So another server replica's writes are seen on the next call, nothing depends on
 * this process being the only one, and a call after a report reads ~150 rows, not the fleet's.
 */
import type { Kysely } from 'kysely';
import { createPolicy, type HostFacts, type UpdateFacts } from '../../domain/policy/index.ts';
import type { Database } from '../../store/schema.ts';
import type { HostRow } from '../../store/server/fleet-repo.ts';
import { memoizedGrid, type FleetGrid } from './fleet-grid.ts';
import {
  catalogFacts,
  loadOverrides,
  loadRings,
  loadRules,
  reportedOnlyFacts,
  type CacheStateOf,
  type FleetHost,
  type FleetRow,
  type FleetView,
} from './policy-view.ts';

/** Above this many changed hosts one scan of host_updates beats IN lists (the first call reads them all). */
const FULL_READ_HOSTS = 1000;
/** Host keys per IN list: well under SQLite's and PostgreSQL's bound-parameter limits. */
const IN_CHUNK = 500;

const HOST_COLUMNS = [
  'key',
  'id',
  'name',
  'ring',
  'agent_version',
  'boot_id',
  'enrolled_at',
  'enroll_token_id',
  'revoked_at',
  'last_seen_at',
  'online_until',
  'last_scan_at',
  'reboot_pending',
  'report_seq',
] as const satisfies readonly (keyof HostRow)[];

const ROW_COLUMNS = [
  'host_key',
  'update_id',
  'kb',
  'title',
  'applicability',
  'delivery',
  'hresult',
  'attempts',
  'last_attempt_at',
  'installed_at',
] as const;

interface CachedHost {
  readonly marker: string;
  readonly rows: readonly FleetRow[];
  /** Its failed attempts with an HRESULT (the overview's latest failures), in row order. */
  readonly failed: readonly FleetRow[];
}

export interface FleetViews {
  /** The fleet now: hosts sorted by key, their rows, rules, rings, overrides, catalog facts, the policy. */
  view(): Promise<FleetView>;
  /** The fleet now and its grid numbers at `now` (fleet-grid.ts). */
  grid(now: Date): Promise<{ readonly view: FleetView; readonly grid: FleetGrid }>;
}

const markerOf = (h: FleetHost): string =>
  `${h.id}\0${h.report_seq}\0${h.name}\0${h.ring ?? ''}\0${h.revoked_at ?? ''}\0${h.last_scan_at ?? ''}`;

/**
 * @example
 *   const views = createFleetViews(db, cacheStateOf);
 *   const fleet = await views.view(); // first call reads every row; later calls what changed
 */
export function createFleetViews(db: Kysely<Database>, cacheStateOf: CacheStateOf = () => 'not-cached'): FleetViews {
  const hosts = new Map<string, CachedHost>();
  // The same few strings repeat on every row (states, KBs, titles, HRESULTs): one copy each.
  const strings = new Map<string, string>();
  const intern = (s: string | null): string | null => {
    if (s === null) return null;
    const known = strings.get(s);
    if (known !== undefined) return known;
    strings.set(s, s);
    return s;
  };
  // How many cached hosts report each update: the view's catalog lists exactly those.
  const reporters = new Map<string, number>();
  let catalogKey: string | null = null;
  // Catalog facts (cache state as last seen) of ids looked up in the current catalog version; null: not in it.
  const catalog = new Map<string, UpdateFacts | null>();
  let last: { signature: string; view: FleetView } | undefined;
  let generation = 0;

  const toRow = (r: {
    update_id: string;
    kb: string | null;
    title: string | null;
    applicability: string;
    delivery: string;
    hresult: string | null;
    attempts: number;
    last_attempt_at: string | null;
    installed_at: string | null;
  }): FleetRow => ({
    updateId: intern(r.update_id)!,
    applicability: intern(r.applicability) as FleetRow['applicability'],
    delivery: intern(r.delivery) as FleetRow['delivery'],
    hresult: intern(r.hresult),
    attempts: Number(r.attempts),
    installedAt: r.installed_at,
    kb: intern(r.kb),
    title: intern(r.title),
    lastAttemptAt: r.last_attempt_at,
  });

  const readRows = async (keys: readonly string[], all: boolean): Promise<Map<string, FleetRow[]>> => {
    const out = new Map<string, FleetRow[]>(keys.map((k) => [k, []]));
    const add = (list: readonly Parameters<typeof toRow>[0][] & readonly { host_key: string }[]) => {
      for (const r of list) out.get(r.host_key)?.push(toRow(r));
    };
    const base = () => db.selectFrom('host_updates').select(ROW_COLUMNS).orderBy('host_key').orderBy('update_id');
    if (all) add(await base().execute());
    else
      for (let i = 0; i < keys.length; i += IN_CHUNK)
        add(
          await base()
            .where('host_key', 'in', keys.slice(i, i + IN_CHUNK))
            .execute(),
        );
    return out;
  };

  const setRows = (key: string, marker: string, rows: readonly FleetRow[]): void => {
    const before = hosts.get(key);
    for (const r of before?.rows ?? []) {
      const n = (reporters.get(r.updateId) ?? 1) - 1;
      if (n === 0) reporters.delete(r.updateId);
      else reporters.set(r.updateId, n);
    }
    for (const r of rows) reporters.set(r.updateId, (reporters.get(r.updateId) ?? 0) + 1);
    hosts.set(key, { marker, rows, failed: rows.filter((r) => r.delivery === 'failed' && r.hresult) });
  };

  async function load(): Promise<FleetView> {
    // Hosts first, rows after: rows are then at least as new as the marker kept for them.
    const hostRows = (await db.selectFrom('hosts').select(HOST_COLUMNS).orderBy('key').execute()).map((h) => ({
      ...h,
      reboot_pending: Number(h.reboot_pending),
      report_seq: Number(h.report_seq),
    }));
    const [rules, rings, overrides, version] = await Promise.all([
      loadRules(db),
      loadRings(db),
      loadOverrides(db),
      db.selectFrom('catalog_versions').select(['id', 'imported_at']).where('state', '=', 'current').executeTakeFirst(),
    ]);
    const present = new Set(hostRows.map((h) => h.key));
    let changedAny = false;
    for (const key of [...hosts.keys()])
      if (!present.has(key)) {
        setRows(key, '', []);
        hosts.delete(key);
        changedAny = true;
      }
    const changed = hostRows.filter((h) => hosts.get(h.key)?.marker !== markerOf(h));
    if (changed.length > 0) {
      const rows = await readRows(
        changed.map((h) => h.key),
        changed.length > FULL_READ_HOSTS,
      );
      for (const h of changed) setRows(h.key, markerOf(h), rows.get(h.key) ?? []);
      changedAny = true;
    }
    if (changedAny) generation += 1;

    const key = version ? `${version.id}\0${version.imported_at ?? ''}` : null;
    if (key !== catalogKey) {
      catalog.clear();
      catalogKey = key;
    }
    const unseen = [...reporters.keys()].filter((id) => !catalog.has(id));
    if (unseen.length > 0) {
      const found = await catalogFacts(db, unseen, () => 'not-cached');
      for (const id of unseen) catalog.set(id, found.get(id) ?? null);
    }
    // The content cache's state is read now for every reported update (it changes as files arrive).
    const facts = new Map<string, UpdateFacts>();
    const unknown = new Set<string>();
    const cacheStates: string[] = [];
    for (const id of reporters.keys()) {
      const state = cacheStateOf(id);
      cacheStates.push(state);
      let f = catalog.get(id);
      if (f === null || f === undefined) {
        unknown.add(id);
        continue;
      }
      if (f.cache !== state) catalog.set(id, (f = { ...f, cache: state }));
      facts.set(id, f);
    }
    const signature = JSON.stringify([generation, key, rules, rings, overrides, cacheStates]);
    // Same decisions: the kept view, but with the hosts as just read — last-seen, online and boot
    // id change on every check-in without changing a marker.
    if (last?.signature === signature) return { ...last.view, hosts: hostRows };

    // An update the catalog does not know (reported ahead of a sync) keeps the KB and title of the
    // first host (by name) that reported it.
    if (unknown.size > 0)
      for (const h of hostRows) {
        for (const r of hosts.get(h.key)!.rows) {
          if (!unknown.has(r.updateId) || facts.has(r.updateId)) continue;
          facts.set(r.updateId, reportedOnlyFacts(r.updateId, r.kb, r.title, cacheStateOf(r.updateId)));
        }
      }
    const rowsByHost = new Map<string, readonly FleetRow[]>();
    const factsByHost = new Map<string, HostFacts>();
    const failed = new Map<string, readonly FleetRow[]>();
    const live: HostFacts[] = [];
    for (const h of hostRows) {
      const cached = hosts.get(h.key)!;
      const f: HostFacts = { name: h.name, ring: h.ring, lastScanAt: h.last_scan_at, updates: cached.rows };
      rowsByHost.set(h.key, cached.rows);
      factsByHost.set(h.key, f);
      if (cached.failed.length > 0) failed.set(h.key, cached.failed);
      if (!h.revoked_at) live.push(f);
    }
    const policy = createPolicy({ hosts: live, rules, rings, catalog: facts, overrides });
    const view: FleetView = {
      policy,
      hosts: hostRows,
      facts: factsByHost,
      rows: rowsByHost,
      failed,
      catalog: facts,
      rules,
      rings,
    };
    last = { signature, view };
    return view;
  }

  // One load at a time (they update the shared cache); each caller gets a load that started after
  // it asked, so it sees every write that committed before its request.
  let tail: Promise<unknown> = Promise.resolve();
  const view = (): Promise<FleetView> => {
    const next = tail.then(load, load);
    tail = next.catch(() => undefined);
    return next;
  };
  const gridOf = memoizedGrid();
  return {
    view,
    async grid(now) {
      const v = await view();
      return { view: v, grid: gridOf(v, now) };
    },
  };
}

/**
 * The whole fleet read once from the store, with no cache (the CLI, and the reference the
 * cached view is tested against).
 */
export function loadFleet(db: Kysely<Database>, cacheStateOf: CacheStateOf = () => 'not-cached'): Promise<FleetView> {
  return createFleetViews(db, cacheStateOf).view();
}

interface FleetDeps {
  readonly store: { readonly db: Kysely<Database> };
  readonly cacheStateOf?: CacheStateOf;
  readonly fleet?: FleetViews;
}
const viewsOf = (deps: FleetDeps): FleetViews => deps.fleet ?? createFleetViews(deps.store.db, deps.cacheStateOf);

/** The fleet view for a route: the app's cache (buildApp makes one), else a one-off load. */
export const fleetView = (deps: FleetDeps): Promise<FleetView> => viewsOf(deps).view();

/** The fleet view and its grid numbers at `now`, for a route. */
export const fleetGrid = (deps: FleetDeps, now: Date): ReturnType<FleetViews['grid']> => viewsOf(deps).grid(now);
