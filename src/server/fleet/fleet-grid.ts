/**
 * The grids' numbers from a fleet view: per host and per update, how many host × update pairs
 * are in each WAPT and WSUS state, and per update how the policy decided for the hosts that need
 * it. Exactly what `policy.hostStates` over every host gives, computed without building a state
 * object per pair:
 *
 * - a decision depends on the host only through its ring and the host-scoped rules that match its
 *   name, so hosts are grouped into classes by those and each update is decided once per class;
 * - a pair's states depend only on (applicability, reported delivery, the server cache's state,
 *   the decision's kind, the ring's directDownload), so they are looked up in a table filled on
 *   first use by the domain's own functions (deriveDelivery, waptState, wsusState).
 *
 * A grid request decides each update once per class; the pass over the rows held in memory (tens
 * of milliseconds at 10,000 hosts) runs again only when the view or a decision kind changed.
 */
import {
  deriveDelivery,
  hostMatches,
  waptState,
  wsusState,
  WAPT_STATES,
  WSUS_STATES,
  type Decision,
  type WaptState,
  type WsusState,
} from '../../domain/policy/index.ts';
import type { FleetView } from './policy-view.ts';

export type WaptCounts = Record<WaptState, number>;
export type WsusCounts = Record<WsusState, number>;

export interface HostCounts {
  readonly wapt: WaptCounts;
  readonly wsus: WsusCounts;
}

export interface UpdateCounts extends HostCounts {
  /** Hosts that need it, by decision. */
  readonly decisions: Record<Decision['kind'], number>;
}

export interface FleetGrid {
  /** Every host of the view (revoked ones too: their page still shows their counts), by key. */
  readonly hosts: ReadonlyMap<string, HostCounts>;
  /** Every update a live (not revoked) host reported, counted over live hosts. */
  readonly updates: ReadonlyMap<string, UpdateCounts>;
}

const KINDS = ['allowed', 'forbidden', 'deferred'] as const;
const zero = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/** States of one combination, as indexes into WAPT_STATES (-1: none) and WSUS_STATES. */
interface Combo {
  readonly wapt: number;
  readonly wsus: number;
}

/**
 * @example computeGrid(await views.view(), now).updates.get(id)?.wapt.MISSING // hosts still missing it
 */
export function computeGrid(view: FleetView, now: Date): FleetGrid {
  return countStates(view, decideClasses(view, now));
}

/** Decision kinds (indexes into KINDS) per class of hosts × reported update, at one instant. */
export interface ClassDecisions {
  readonly classOf: ReadonlyMap<string, number>;
  readonly classes: readonly { readonly directDownload: boolean; readonly kinds: ReadonlyMap<string, number> }[];
  /** Equal signatures (over the same view): every decision kind is the same. */
  readonly signature: string;
  /**
   * Until when (ms) these kinds hold over the same view as the clock moves forward: the earliest
   * end of a deferral. Time only ends deferrals (an install delay, a promotion soak); rules,
   * overrides, halts and evidence change only with the view.
   */
  readonly validUntilMs: number;
}

/**
 * Groups hosts into classes (same ring, same host-scoped rules matching the name: the same
 * decision for every update) and decides every reported update once per class.
 */
export function decideClasses(view: FleetView, now: Date): ClassDecisions {
  const { policy } = view;
  const hostRules = view.rules.filter((r) => (r.hosts?.length ?? 0) > 0);
  const byKey = new Map<string, number>();
  const classOf = new Map<string, number>();
  const classes: { directDownload: boolean; kinds: Map<string, number> }[] = [];
  const parts: string[] = [];
  let validUntilMs = Infinity;
  for (const h of view.hosts) {
    const ring = policy.ringOf({ name: h.name, ring: h.ring });
    const scoped = hostRules.filter((r) => r.hosts!.some((p) => hostMatches(p, h.name))).map((r) => r.id);
    const key = `${ring?.name ?? ''}\0${scoped.join('\0')}`;
    let index = byKey.get(key);
    if (index === undefined) {
      byKey.set(key, (index = classes.length));
      const kinds = new Map<string, number>();
      for (const updateId of view.catalog.keys()) {
        const d = policy.decision({ name: h.name, ring: h.ring }, updateId, now);
        kinds.set(updateId, KINDS.indexOf(d.kind));
        if (d.kind === 'deferred' && d.until !== null) validUntilMs = Math.min(validUntilMs, Date.parse(d.until));
      }
      classes.push({ directDownload: ring?.directDownload ?? false, kinds });
      parts.push(key, [...kinds.values()].join(''));
    }
    classOf.set(h.key, index);
  }
  return { classOf, classes, signature: parts.join('\n'), validUntilMs };
}

/** Counts every host's and every update's states in one pass over the rows. */
export function countStates(view: FleetView, decided: ClassDecisions): FleetGrid {
  // (applicability, delivery) pairs numbered as met; a combination's index packs the five inputs.
  const pairs = new Map<string, Map<string, number>>();
  const pairNames: [string, string][] = [];
  const combos: (Combo | undefined)[] = [];
  const CACHES = ['not-cached', 'downloading', 'cached'];
  const combo = (applicability: string, delivery: string, cache: string, kind: number, direct: boolean): Combo => {
    let byDelivery = pairs.get(applicability);
    if (!byDelivery) pairs.set(applicability, (byDelivery = new Map()));
    let pair = byDelivery.get(delivery);
    if (pair === undefined) {
      byDelivery.set(delivery, (pair = pairNames.length));
      pairNames.push([applicability, delivery]);
    }
    const cacheIndex = CACHES.indexOf(cache);
    const index = ((pair * 4 + cacheIndex + 1) * 3 + kind) * 2 + (direct ? 1 : 0);
    let c = combos[index];
    if (!c) {
      const facts = {
        updateId: '',
        applicability: applicability as never,
        delivery: delivery as never,
        hresult: null,
        attempts: 0,
        installedAt: null,
      };
      const d = deriveDelivery(facts, cache as never);
      const decision: Decision = {
        kind: KINDS[kind]!,
        until: null,
        by: { kind: 'default-deny', ring: null },
        matchedRules: [],
      };
      const w = waptState(facts.applicability, decision, d, direct);
      c = {
        wapt: w === null ? -1 : WAPT_STATES.indexOf(w),
        wsus: WSUS_STATES.indexOf(wsusState(facts.applicability, d)),
      };
      combos[index] = c;
    }
    return c;
  };

  const hosts = new Map<string, HostCounts>();
  const updates = new Map<string, UpdateCounts>();
  for (const h of view.hosts) {
    const cls = decided.classes[decided.classOf.get(h.key)!]!;
    const direct = cls.directDownload;
    const live = !h.revoked_at;
    const wapt = zero(WAPT_STATES);
    const wsus = zero(WSUS_STATES);
    for (const r of view.rows.get(h.key) ?? []) {
      const kind = cls.kinds.get(r.updateId)!;
      const c = combo(r.applicability, r.delivery, view.catalog.get(r.updateId)?.cache ?? 'not-cached', kind, direct);
      const waptName = c.wapt >= 0 ? WAPT_STATES[c.wapt]! : null;
      const wsusName = WSUS_STATES[c.wsus]!;
      if (waptName) wapt[waptName] += 1;
      wsus[wsusName] += 1;
      if (!live) continue;
      let u = updates.get(r.updateId);
      if (!u) {
        u = { wapt: zero(WAPT_STATES), wsus: zero(WSUS_STATES), decisions: zero(KINDS) };
        updates.set(r.updateId, u);
      }
      if (waptName) u.wapt[waptName] += 1;
      u.wsus[wsusName] += 1;
      if (r.applicability === 'needed') u.decisions[KINDS[kind]!] += 1;
    }
    hosts.set(h.key, { wapt, wsus });
  }
  return { hosts, updates };
}

/**
 * The grid of the last view, counted again only when the view changed or a decision kind did (a
 * deferral ended, a promotion gate opened). Over an unchanged view the decisions themselves are
 * reused until the earliest deferral ends (or the clock goes back); the pass over every row is
 * what is saved most.
 */
export function memoizedGrid(): (view: FleetView, now: Date) => FleetGrid {
  let last: { view: FleetView; decided: ClassDecisions; at: number; grid: FleetGrid } | undefined;
  return (view, now) => {
    const t = now.getTime();
    if (last && last.view === view && t >= last.at && t < last.decided.validUntilMs) return last.grid;
    const decided = decideClasses(view, now);
    const grid =
      last && last.view === view && last.decided.signature === decided.signature
        ? last.grid
        : countStates(view, decided);
    last = { view, decided, at: t, grid };
    return grid;
  };
}
