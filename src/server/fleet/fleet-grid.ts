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
  /** Live hosts that reported it. */
  readonly hosts: number;
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
      parts.push(key, String(ring?.directDownload ?? false), [...kinds.values()].join(''));
    }
    classOf.set(h.key, index);
  }
  return { classOf, classes, signature: parts.join('\n'), validUntilMs };
}

// (applicability, delivery) pairs numbered as met; a combination's index packs the five inputs.
const pairs = new Map<string, Map<string, number>>();
const combos: (Combo | undefined)[] = [];
const CACHES = ['not-cached', 'downloading', 'cached'];
function combo(applicability: string, delivery: string, cache: string, kind: number, direct: boolean): Combo {
  let byDelivery = pairs.get(applicability);
  if (!byDelivery) pairs.set(applicability, (byDelivery = new Map()));
  let pair = byDelivery.get(delivery);
  if (pair === undefined) byDelivery.set(delivery, (pair = combos.length));
  const index = ((pair * 4 + CACHES.indexOf(cache) + 1) * 3 + kind) * 2 + (direct ? 1 : 0);
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
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface MutableGrid {
  readonly hosts: Map<string, HostCounts>;
  /** An update leaves the grid when no live host reports it any more (`hosts` 0). */
  readonly updates: Map<string, Mutable<UpdateCounts>>;
}

/** Adds (sign 1) or takes away (sign -1) one host's rows, as decided in `view`. */
function contribute(
  grid: MutableGrid,
  view: FleetView,
  decided: ClassDecisions,
  key: string,
  live: boolean,
  sign: 1 | -1,
) {
  const cls = decided.classes[decided.classOf.get(key)!]!;
  // Counted by index, named once at the end (the loop runs once per row of the fleet).
  const waptN = WAPT_STATES.map(() => 0);
  const wsusN = WSUS_STATES.map(() => 0);
  for (const r of view.rows.get(key) ?? []) {
    const kind = cls.kinds.get(r.updateId)!;
    const c = combo(
      r.applicability,
      r.delivery,
      view.catalog.get(r.updateId)?.cache ?? 'not-cached',
      kind,
      cls.directDownload,
    );
    if (c.wapt >= 0) waptN[c.wapt]! += 1;
    wsusN[c.wsus]! += 1;
    if (!live) continue;
    let u = grid.updates.get(r.updateId);
    if (!u) {
      u = { wapt: zero(WAPT_STATES), wsus: zero(WSUS_STATES), decisions: zero(KINDS), hosts: 0 };
      grid.updates.set(r.updateId, u);
    }
    if (c.wapt >= 0) u.wapt[WAPT_STATES[c.wapt]!] += sign;
    u.wsus[WSUS_STATES[c.wsus]!] += sign;
    if (r.applicability === 'needed') u.decisions[KINDS[kind]!] += sign;
    u.hosts += sign;
    if (u.hosts === 0) grid.updates.delete(r.updateId);
  }
  if (sign === -1) grid.hosts.delete(key);
  else
    grid.hosts.set(key, {
      wapt: Object.fromEntries(WAPT_STATES.map((k, i) => [k, waptN[i]!])) as WaptCounts,
      wsus: Object.fromEntries(WSUS_STATES.map((k, i) => [k, wsusN[i]!])) as WsusCounts,
    });
}

/** Counts every host's and every update's states in one pass over the rows. */
export function countStates(view: FleetView, decided: ClassDecisions): FleetGrid {
  const grid: MutableGrid = { hosts: new Map(), updates: new Map() };
  for (const h of view.hosts) contribute(grid, view, decided, h.key, !h.revoked_at, 1);
  return grid;
}

/**
 * The grid of `view` from the grid of `before`, when only some hosts' rows changed (the same
 * decisions, the same content cache states): those hosts' old rows are taken away and their new
 * rows added. Null when more changed (then everything is counted again).
 */
function recount(
  before: { view: FleetView; decided: ClassDecisions; grid: FleetGrid },
  view: FleetView,
  decided: ClassDecisions,
): FleetGrid | null {
  if (before.decided.signature !== decided.signature) return null;
  for (const [id, f] of view.catalog) if (before.view.catalog.get(id)?.cache !== f.cache) return null;
  const old = before.grid as MutableGrid;
  const grid: MutableGrid = {
    hosts: new Map(old.hosts),
    updates: new Map(
      [...old.updates].map(([id, u]) => [
        id,
        { wapt: { ...u.wapt }, wsus: { ...u.wsus }, decisions: { ...u.decisions }, hosts: u.hosts },
      ]),
    ),
  };
  const was = new Map(before.view.hosts.map((h) => [h.key, h]));
  const is = new Map(view.hosts.map((h) => [h.key, h]));
  const same = (key: string) =>
    was.has(key) &&
    is.has(key) &&
    before.view.rows.get(key) === view.rows.get(key) &&
    !was.get(key)!.revoked_at === !is.get(key)!.revoked_at &&
    before.decided.classOf.get(key) === decided.classOf.get(key);
  for (const [key, h] of was) if (!same(key)) contribute(grid, before.view, before.decided, key, !h.revoked_at, -1);
  for (const [key, h] of is) if (!same(key)) contribute(grid, view, decided, key, !h.revoked_at, 1);
  return grid;
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
    // A view is the same when its policy is: the cache hands out copies with fresh host rows.
    const same = last !== undefined && last.view.policy === view.policy;
    if (last && same && t >= last.at && t < last.decided.validUntilMs) return last.grid;
    const decided = decideClasses(view, now);
    const grid =
      last && same && last.decided.signature === decided.signature
        ? last.grid
        : ((last && recount(last, view, decided)) ?? countStates(view, decided));
    last = { view, decided, at: t, grid };
    return grid;
  };
}
