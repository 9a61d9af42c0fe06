/**
 * The server's content cache, wired to the fleet (src/content does the bytes; this decides which):
 *  - `plan()` looks at the fleet — which updates some host needs and may install (the pure
 *    policy's decisions) — and has the cache fetch exactly their payload files, once each,
 *    verified against the catalog's digests; it runs after changes (debounced) and on a timer;
 *  - `updateContent(updateId)` answers an agent that wants an update's files (the gateway checked
 *    that the host needs it and may install it): it joins or starts the download and waits a
 *    bounded time, so the agent then reads every file from the cache with Range;
 *  - `cleanup()` deletes what no host needs after the grace period (default 7 days).
 * Files live under DATA/content, named by digest; the index is a JSON file beside them.
 */
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import {
  createContentCache,
  jsonFileContentIndex,
  normalizeSpec,
  specFromCatalogFile,
  DEFAULT_CLEANUP_GRACE_MS,
  type ContentEvent,
  type NormalizedSpec,
} from '../content/index.ts';
import type { ContentService } from '../server/context.ts';
import { loadFleet } from '../server/fleet/fleet-cache.ts';
import type { Database } from '../store/schema.ts';
import type { Database_ } from '../store/open.ts';

/** After a change (a report, a rule), the fleet is looked at again at most this often… */
export const CONTENT_PLAN_MIN_SPACING_MS = 5_000;
/** …and no more than 1/this of the time: a plan over a large fleet takes a while. */
const CONTENT_PLAN_DUTY_FACTOR = 20;
/** And at least this often, whatever happens (a maintenance window's decision changes with time). */
export const CONTENT_PLAN_INTERVAL_MS = 10 * 60_000;
/** An agent asking for an update's files waits this long for them before it is told to come back. */
export const CONTENT_WAIT_MS = 20_000;
/** Payload downloads from upstream at once (the rest queue). */
const CONTENT_DOWNLOAD_CONCURRENCY = 4;
const DAY_MS = 86_400_000;
export const DEFAULT_CLEANUP_INTERVAL_MS = DAY_MS;

/** One payload file as the agent is told about it. */
export interface AgentContentFile {
  readonly digest: string;
  readonly sha1: string | null;
  readonly sha256: string | null;
  readonly size: number | null;
  readonly fileName: string | null;
}

export interface ServerContentOptions {
  readonly store: Database_;
  /** DATA/content. */
  readonly dir: string;
  readonly now: () => Date;
  /** Upstreams the cache may fetch from (SSRF guard). */
  readonly allowUrl: (url: URL) => boolean;
  readonly graceMs?: number;
  readonly log: (message: string, error?: unknown) => void;
  /** Told the bytes received from upstream (the server's upstream-bytes metric). */
  readonly onUpstreamBytes?: (bytes: number) => void;
}

export interface ServerContent extends ContentService {
  /** Delivery state of an update's files for the policy (MISSING vs PENDING). */
  cacheStateOf(updateId: string): 'not-cached' | 'downloading' | 'cached';
  /** A verified file by digest, for the gateway. */
  file(digest: string): Promise<{ readonly path: string; readonly size: number } | null>;
  /** The update's files, once cached (null: no files in the catalog; 'pending': still downloading). */
  updateContent(updateId: string): Promise<readonly AgentContentFile[] | null | 'pending'>;
  /** Looks at the fleet now and fetches what is needed and allowed. */
  plan(): Promise<{ readonly updates: number; readonly files: number }>;
  /** Asks for a plan soon (debounced); wire it to the event feed. */
  planSoon(): void;
  readonly upstreamDownloads: () => number;
  /** Counts bytes the gateway served from the cache (stats().servedBytes). */
  noteServed(bytes: number): void;
  close(): Promise<void>;
}

/** Payload files of these updates in the current catalog, bundle members' files included (as WUA downloads them). */
export async function payloadSpecs(
  db: Kysely<Database>,
  updateIds: readonly string[],
): Promise<Map<string, NormalizedSpec[]>> {
  const out = new Map<string, NormalizedSpec[]>();
  const version = await db
    .selectFrom('catalog_versions')
    .select('id')
    .where('state', '=', 'current')
    .executeTakeFirst();
  if (!version || updateIds.length === 0) return out;
  for (let i = 0; i < updateIds.length; i += 500) {
    const ids = updateIds.slice(i, i + 500).map((id) => id.toLowerCase());
    const revisions = await db
      .selectFrom('catalog_updates')
      .select(['update_id', 'revision_id', 'revision_number'])
      .where('version_id', '=', version.id)
      .where('update_id', 'in', ids)
      .orderBy('revision_number')
      .execute();
    const newest = new Map(revisions.map((r) => [r.update_id, r.revision_id]));
    const revs = [...newest.values()];
    if (revs.length === 0) continue;
    const members = await db
      .selectFrom('catalog_bundles')
      .select(['bundle_revision_id', 'member_revision_id'])
      .where('version_id', '=', version.id)
      .where('bundle_revision_id', 'in', revs)
      .execute();
    const allRevs = [...new Set([...revs, ...members.map((m) => m.member_revision_id)])];
    const files = await db
      .selectFrom('catalog_update_files as uf')
      .leftJoin('catalog_files as f', (j) =>
        j.onRef('f.version_id', '=', 'uf.version_id').onRef('f.file_id', '=', 'uf.file_id'),
      )
      .select(['uf.revision_id', 'uf.file_id', 'f.file_name', 'f.size', 'f.sha256', 'f.url'])
      .where('uf.version_id', '=', version.id)
      .where('uf.revision_id', 'in', allRevs)
      .execute();
    for (const [updateId, rev] of newest) {
      const mine = [rev, ...members.filter((m) => m.bundle_revision_id === rev).map((m) => m.member_revision_id)];
      const specs = new Map<string, NormalizedSpec>();
      for (const f of files.filter((x) => mine.includes(x.revision_id))) {
        const spec = specFromCatalogFile({
          sha1: f.file_id,
          sha256: f.sha256 ?? null,
          url: f.url ?? null,
          size: f.size ?? null,
          fileName: f.file_name ?? null,
        });
        if (!spec) continue;
        const normalized = normalizeSpec(spec);
        specs.set(normalized.key, normalized);
      }
      out.set(updateId, [...specs.values()]);
    }
  }
  return out;
}

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export function createServerContent(options: ServerContentOptions): ServerContent {
  const { store, now, log } = options;
  const index = jsonFileContentIndex(join(options.dir, 'index.json'));
  let downloads = 0;
  let served = 0;
  const onEvent = (e: ContentEvent): void => {
    if (e.kind === 'download-started') downloads++;
    if (e.kind === 'progress') options.onUpstreamBytes?.(e.bytes);
    if (e.kind === 'cached')
      log(`content: cached ${e.key} (${e.size} bytes${e.resumedFrom ? `, resumed at ${e.resumedFrom}` : ''})`);
    if (e.kind === 'rejected') log(`content: rejected ${e.key}: ${e.reason}`);
  };
  const cache = createContentCache({ dir: options.dir, index, now, allowUrl: options.allowUrl, onEvent });
  /** updateId (lower case) → its payload files, as last looked up. */
  const known = new Map<string, readonly NormalizedSpec[]>();
  let planning: Promise<{ updates: number; files: number }> | undefined;
  let lastPlanAt = 0;
  let lastPlanMs = 0;
  let soon: NodeJS.Timeout | undefined;
  let closed = false;

  const specsOf = async (updateIds: readonly string[]): Promise<Map<string, NormalizedSpec[]>> => {
    const found = await payloadSpecs(store.db, updateIds);
    for (const [id, specs] of found) known.set(id, specs);
    return found;
  };

  const ensureLogged = (spec: NormalizedSpec): Promise<void> =>
    cache.ensure(spec).then(
      () => undefined,
      (error: unknown) => log(`content: ${spec.url} failed`, error),
    );

  async function planOnce(): Promise<{ updates: number; files: number }> {
    const fleet = await loadFleet(store.db, (id) => state(id));
    const t = now();
    const allowed = new Set<string>();
    const needed = new Set<string>();
    for (const h of fleet.hosts) {
      const facts = fleet.facts.get(h.key);
      if (!facts || h.revoked_at) continue;
      for (const s of fleet.policy.hostStates(facts, t)) {
        if (s.applicability !== 'needed') continue;
        needed.add(s.updateId.toLowerCase());
        if (s.decision.kind === 'allowed') allowed.add(s.updateId.toLowerCase());
      }
    }
    const specs = await specsOf([...needed]);
    cache.markNeeded([...needed].flatMap((id) => (specs.get(id) ?? []).map((s) => s.key)));
    const wanted = [...allowed].flatMap((id) => specs.get(id) ?? []).filter((s) => cache.state(s.key) === 'not-cached');
    const unique = [...new Map(wanted.map((s) => [s.key, s])).values()];
    if (unique.length > 0) log(`content: ${unique.length} file(s) of ${allowed.size} allowed update(s) to fetch`);
    // Downloads go on in the background; the plan returns once they are started.
    void eachLimited(unique, CONTENT_DOWNLOAD_CONCURRENCY, ensureLogged);
    return { updates: allowed.size, files: unique.length };
  }

  function state(updateId: string): 'not-cached' | 'downloading' | 'cached' {
    const specs = known.get(updateId.toLowerCase());
    if (!specs || specs.length === 0) return 'not-cached';
    const states = specs.map((s) => cache.state(s.key));
    if (states.every((s) => s === 'cached')) return 'cached';
    return states.some((s) => s === 'downloading') ? 'downloading' : 'not-cached';
  }

  const service: ServerContent = {
    cacheStateOf: state,
    async file(digest) {
      const f = cache.lookup(digest);
      return f ? { path: f.path, size: f.size } : null;
    },
    async updateContent(updateId) {
      const specs = (await specsOf([updateId])).get(updateId.toLowerCase()) ?? [];
      if (specs.length === 0) return null;
      const all = Promise.all(specs.map((s) => cache.ensure(s)));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'pending'>((resolve) => {
        timer = setTimeout(() => resolve('pending'), CONTENT_WAIT_MS);
      });
      try {
        const files = await Promise.race([all, timeout]);
        if (files === 'pending') {
          all.catch((error: unknown) => log(`content: ${updateId} failed`, error));
          return 'pending';
        }
        return files.map((f) => ({
          digest: f.key,
          sha1: f.sha1,
          sha256: f.sha256,
          size: f.size,
          fileName: specs.find((s) => s.key === f.key)?.fileName ?? null,
        }));
      } finally {
        clearTimeout(timer);
      }
    },
    plan() {
      const started = Date.now();
      planning ??= planOnce().finally(() => {
        planning = undefined;
        lastPlanAt = Date.now();
        lastPlanMs = lastPlanAt - started;
      });
      return planning;
    },
    planSoon() {
      if (soon || closed) return;
      const wait = Math.max(
        0,
        lastPlanAt + Math.max(CONTENT_PLAN_MIN_SPACING_MS, lastPlanMs * CONTENT_PLAN_DUTY_FACTOR) - Date.now(),
      );
      soon = setTimeout(() => {
        soon = undefined;
        service.plan().catch((error: unknown) => log('content: planning failed', error));
      }, wait);
    },
    stats: () => ({ ...cache.stats(), servedBytes: served }),
    noteServed: (bytes) => void (served += bytes),
    list: () =>
      index.list().map((r) => ({
        key: r.key,
        sha1: r.sha1,
        sha256: r.sha256,
        size: r.size,
        fileName: r.fileName,
        cachedAt: r.cachedAt,
        lastNeededAt: r.lastNeededAt,
      })),
    async cleanup() {
      // What some host still needs (allowed or not) is kept: a rule may allow it tomorrow.
      const fleet = await loadFleet(store.db, (id) => state(id));
      const needed = new Set<string>();
      for (const rows of fleet.rows.values())
        for (const r of rows) if (r.applicability === 'needed') needed.add(r.updateId.toLowerCase());
      const specs = await specsOf([...needed]);
      const digests = [...specs.values()].flatMap((list) => list.flatMap((s) => [s.key, ...(s.sha1 ? [s.sha1] : [])]));
      return cache.cleanup({ needed: digests, graceMs: options.graceMs ?? DEFAULT_CLEANUP_GRACE_MS });
    },
    upstreamDownloads: () => downloads,
    async close() {
      closed = true;
      clearTimeout(soon);
      await planning?.catch(() => undefined);
      await cache.close();
    },
  };
  return service;
}
