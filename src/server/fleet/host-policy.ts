/**
 * The policy each agent receives at check-in (ring settings and the updates it may install now),
 * decided for that host alone and kept until something it depends on changes — never by loading
 * and deciding the whole fleet per check-in. An action wakes every held check-in of a ring at once:
 * 10,000 answers in a second each need their policy, and a whole-fleet view (every host × update)
 * took longer than that to read at 10,000 hosts.
 *
 * What a host's policy depends on, and how a change is seen:
 *  - rules, rings, promotion overrides, the current catalog version: read together (four small
 *    tables) at most every `ttlMs`, and at once after `invalidate()` (an action is created right
 *    after the rule that makes it useful); any change there starts a new generation;
 *  - the host's reported updates: `hosts.report_seq`, bumped by every applied report;
 *  - the clock: a deferral ends at its date; a promotion gate (evidence counted over the previous
 *    ring's hosts) is re-decided every `ttlMs`, as the fleet view's cache did.
 * The host's rows and seqs are read in batches (batch-loader.ts), one query per few hundred hosts.
 */
import type { Kysely } from 'kysely';
import { namedPolicy, type AgentPolicy } from '../../domain/agent-protocol.ts';
import {
  createPolicy,
  ringOfHost,
  WEEKDAYS,
  type HostFacts,
  type Policy,
  type PromotionOverride,
  type Ring,
  type UpdateFacts,
} from '../../domain/policy/index.ts';
import type { Database } from '../../store/schema.ts';
import {
  fleetUpdateRowsOf,
  listHostRows,
  neededUpdateIdsOf,
  reportedFactsOf,
  reportSeqsOf,
} from '../../store/server/fleet-repo.ts';
import type { PolicyOptions } from '../gateway/gateway.ts';
import type { AgentHost } from '../gateway/store.ts';
import { batchLoader } from './batch-loader.ts';
import { catalogFacts, loadOverrides, loadRings, loadRules, reportedOnlyFacts } from './policy-view.ts';

/** How long rules, rings and promotion evidence are reused (policy changes reach agents within this). */
export const HOST_POLICY_TTL_MS = 2_000;
/** Hosts in no ring scan daily, WSUS's default detection frequency is 22 h. */
const DEFAULT_SCAN_INTERVAL_S = 22 * 3600;

export interface HostPolicies {
  policyFor(host: AgentHost, options?: PolicyOptions): Promise<AgentPolicy>;
  /** Re-read rules, rings and overrides before the next answer. */
  invalidate(): void;
}

interface Generation {
  readonly id: number;
  readonly at: number;
  readonly fingerprint: string;
  readonly versionId: string | null;
  readonly rings: readonly Ring[];
  readonly overrides: readonly PromotionOverride[];
  readonly policy: Policy;
  readonly facts: Map<string, UpdateFacts>;
  /** Rings whose updates wait on a promotion gate (their decisions change with other hosts' reports). */
  readonly gated: ReadonlySet<string>;
}

interface Cached {
  readonly generation: number;
  readonly ring: string;
  readonly seq: number;
  readonly validUntil: number;
  readonly policy: AgentPolicy;
}

export function createHostPolicies(deps: {
  readonly db: Kysely<Database>;
  readonly now: () => Date;
  readonly ttlMs?: number;
}): HostPolicies {
  const { db } = deps;
  const ttlMs = deps.ttlMs ?? HOST_POLICY_TTL_MS;
  const perHost = new Map<string, Cached>();
  /** Decisions under way per host: a woken check-in joins the one its held check-in started. */
  const deciding = new Map<string, Promise<Cached>>();
  /** Catalog facts (or the reported KB of an update the catalog does not know) of the current version. */
  let facts = new Map<string, UpdateFacts>();
  let factsVersion: string | null = null;
  let generation: Promise<Generation> | undefined;
  let generationAt = 0;
  let last: Generation | undefined;
  let stale = false;

  const catalog = batchLoader((ids: readonly string[]) => catalogFacts(db, ids, () => 'not-cached'));
  const seqs = batchLoader((ids: readonly string[]) => reportSeqsOf(db, ids));
  /** Per host, the ids of the updates it needs, sorted (the policy's allowed list keeps that order). */
  const needed = batchLoader(async (ids: readonly string[]) => {
    const out = new Map<string, string[]>();
    for (const r of await neededUpdateIdsOf(db, ids)) {
      let list = out.get(r.host_id);
      if (!list) out.set(r.host_id, (list = []));
      list.push(r.update_id);
    }
    for (const list of out.values()) list.sort();
    return out;
  });

  async function load(at: number): Promise<Generation> {
    const [rules, rings, overrides, version] = await Promise.all([
      loadRules(db),
      loadRings(db),
      loadOverrides(db),
      db.selectFrom('catalog_versions').select('id').where('state', '=', 'current').executeTakeFirst(),
    ]);
    const versionId = version ? String(version.id) : null;
    const gated = new Set(
      rings.filter((r, i) => i > 0 && (r.promotion || overrides.some((o) => o.ring === r.name))).map((r) => r.name),
    );
    const fingerprint = JSON.stringify([rules, rings, overrides, versionId]);
    const previous = last;
    if (factsVersion !== versionId) {
      facts = new Map();
      factsVersion = versionId;
    }
    const evidence = gated.size > 0 ? await promotionHosts(rings, gated) : [];
    // A new Policy each time (it memoises promotion answers per instant, so one kept for hours
    // would grow), but the same generation id while nothing it decides from changed: the hosts'
    // cached answers stay valid.
    const policy = createPolicy({ hosts: evidence, rules, rings, catalog: facts, overrides });
    const id = previous && previous.fingerprint === fingerprint ? previous.id : (previous?.id ?? 0) + 1;
    return { id, at, fingerprint, versionId, rings, overrides, policy, facts, gated };
  }

  /** Hosts of the rings a gated ring promotes from, with every reported update (the evidence). */
  async function promotionHosts(rings: readonly Ring[], gated: ReadonlySet<string>): Promise<HostFacts[]> {
    const from = new Set(rings.flatMap((r, i) => (gated.has(r.name) ? [rings[i - 1]!.name] : [])));
    const hosts = (await listHostRows(db)).filter(
      (h) => !h.revoked_at && from.has(ringOfHost({ name: h.name, ring: h.ring }, rings)?.name ?? ''),
    );
    const rows = new Map<string, HostFacts['updates'][number][]>();
    for (let i = 0; i < hosts.length; i += 500) {
      for (const r of await fleetUpdateRowsOf(
        db,
        hosts.slice(i, i + 500).map((h) => h.key),
      )) {
        let list = rows.get(r.host_key);
        if (!list) rows.set(r.host_key, (list = []));
        list.push({
          updateId: r.update_id,
          applicability: r.applicability as HostFacts['updates'][number]['applicability'],
          delivery: r.delivery as HostFacts['updates'][number]['delivery'],
          hresult: r.hresult,
          attempts: r.attempts,
          installedAt: r.installed_at,
        });
      }
    }
    return hosts.map((h) => ({
      name: h.name,
      ring: h.ring,
      lastScanAt: h.last_scan_at,
      updates: rows.get(h.key) ?? [],
    }));
  }

  function current(): Promise<Generation> {
    const at = deps.now().getTime();
    if (!generation || stale || at - generationAt >= ttlMs || at < generationAt) {
      stale = false;
      generationAt = at;
      const next = load(at);
      generation = next;
      next.then(
        (g) => (last = g),
        () => (generation = undefined),
      );
    }
    return generation;
  }

  /** Facts of these updates into the generation's map: the catalog's, else what the host reported. */
  async function ensureFacts(target: Map<string, UpdateFacts>, hostId: string, ids: readonly string[]): Promise<void> {
    const missing = ids.filter((id) => !target.has(id));
    if (missing.length === 0) return;
    // Through the batch loader: hosts woken together need mostly the same updates, read once.
    const known = await Promise.all(missing.map((id) => catalog.load(id)));
    const unknown: string[] = [];
    missing.forEach((id, i) => {
      const facts = known[i];
      if (facts) target.set(id, facts);
      else if (!target.has(id)) unknown.push(id);
    });
    // Not in the catalog (reported ahead of a sync): the KB and title the host reported.
    for (const r of await reportedFactsOf(db, hostId, unknown))
      if (!target.has(r.update_id)) target.set(r.update_id, reportedOnlyFacts(r.update_id, r.kb, r.title));
  }

  async function compute(host: AgentHost, g: Generation, seq: number): Promise<Cached> {
    const nowDate = deps.now();
    const now = nowDate.getTime();
    const rows = (await needed.load(host.id)) ?? [];
    await ensureFacts(g.facts, host.id, rows);
    const who = { name: host.name, ring: host.ring || null };
    const ring = ringOfHost(who, g.rings);
    let validUntil = ring && g.gated.has(ring.name) ? now + ttlMs : Number.POSITIVE_INFINITY;
    const allowed: string[] = [];
    for (const id of rows) {
      const d = g.policy.decision(who, id, nowDate);
      if (d.kind === 'allowed') allowed.push(g.facts.get(id)?.updateId ?? id);
      else if (d.kind === 'deferred') validUntil = Math.min(validUntil, d.until ? Date.parse(d.until) : now + ttlMs);
    }
    const policy: AgentPolicy = {
      ring: ring?.name ?? host.ring,
      scanIntervalSeconds: ring ? ring.scanIntervalMinutes * 60 : DEFAULT_SCAN_INTERVAL_S,
      scanSource: 'offline',
      windows: (ring?.maintenanceWindows ?? []).map((w) => ({
        weekdays: w.weekdays.map((d) => WEEKDAYS.indexOf(d)),
        start: w.start,
        durationMinutes: w.durationMinutes,
        timeZone: w.timeZone,
      })),
      reboot: ring?.rebootPolicy ?? 'if-required',
      installAtShutdown: ring?.installAtShutdown ?? false,
      directDownload: ring?.directDownload ?? false,
      allowedUpdateIds: allowed,
    };
    // Serialised and named now, while deciding ahead: not in the burst of answers an action wakes.
    namedPolicy(policy);
    return { generation: g.id, ring: host.ring, seq, validUntil, policy };
  }

  return {
    async policyFor(host, options) {
      if (options?.reportMayLag) {
        // Decided under the current rules, rings and clock, maybe on an earlier report: good enough
        // for a check-in an action woke (PolicyOptions), and no read of the host's rows.
        const g = await current();
        const hit = perHost.get(host.id);
        if (stillValid(hit, g, host, deps.now())) return hit.policy;
        const under = await deciding.get(host.id)?.catch(() => undefined);
        if (stillValid(under, g, host, deps.now())) return under.policy;
      }
      const [g, seq] = await Promise.all([current(), seqs.load(host.id).then((s) => s ?? 0)]);
      const hit = perHost.get(host.id);
      if (stillValid(hit, g, host, deps.now()) && hit.seq === seq) return hit.policy;
      const decided = compute(host, g, seq);
      deciding.set(host.id, decided);
      try {
        const next = await decided;
        perHost.set(host.id, next);
        return next.policy;
      } finally {
        if (deciding.get(host.id) === decided) deciding.delete(host.id);
      }
    },
    invalidate() {
      stale = true;
    },
  };
}

/** A cached answer still holds under this generation, for the host's ring, at `now`. */
function stillValid(hit: Cached | undefined, g: Generation, host: AgentHost, now: Date): hit is Cached {
  return hit !== undefined && hit.generation === g.id && hit.ring === host.ring && now.getTime() < hit.validUntil;
}
