/**
 * The policy: (host facts, rules, rings, catalog facts, promotion overrides, now) → per host ×
 * update state. Pure and deterministic; the server calls it after every scan report, rule or ring
 * change and on a timer (deferrals and soak times end with the clock, not with an event).
 *
 * Order of a decision, first that applies wins:
 *   1. a matching forbid rule (forbid always wins, whatever the scope or order);
 *   2. a manual halt of the update for the host's ring;
 *   3. an allow: an explicit allow rule (UpdateID/KB), else a broad allow rule or the ring's
 *      defaultAllow — these two only for the ring's allowedSeverities; nothing allows → forbidden
 *      ("default-deny");
 *   4. the promotion gate from the previous ring (unless promoted by hand): halted → forbidden,
 *      not yet met → deferred;
 *   5. installDelayDays from the release date → deferred until that date;
 *   6. allowed.
 */
import { compileRule, evaluateRules, severityOf, type CompiledRule } from './rules.ts';
import { evaluatePromotion } from './promotion.ts';
import { ringOfHost } from './rings.ts';
import { deriveDelivery, waptState, wsusState } from './states.ts';
import type {
  CatalogFacts,
  Decision,
  DecisionReason,
  HostFacts,
  HostUpdateFacts,
  HostUpdateState,
  PromotionOverride,
  PromotionResult,
  Ring,
  Rule,
  UpdateFacts,
} from './types.ts';

const DAY_MS = 86_400_000;

export interface PolicyInput {
  /** Every host of the fleet: promotion evidence is counted over them. */
  readonly hosts: readonly HostFacts[];
  readonly rules: readonly Rule[];
  /** Ordered, first = pilot. */
  readonly rings: readonly Ring[];
  readonly catalog: CatalogFacts;
  readonly overrides: readonly PromotionOverride[];
}

export interface Policy {
  /** The host's ring (null: in no ring). */
  ringOf(host: Pick<HostFacts, 'name' | 'ring'>): Ring | null;
  /** Promotion of an update into `ring` (null for the first ring or a ring without a gate). */
  promotion(updateId: string, ring: string, now: Date): PromotionResult | null;
  /** The decision alone, for one host × update (applicability not considered). */
  decision(host: Pick<HostFacts, 'name' | 'ring'>, updateId: string, now: Date): Decision;
  /** Every update the host reported. */
  hostStates(host: HostFacts, now: Date): HostUpdateState[];
  /**
   * One host × update, also for updates the host did not report: `unknown` before its first
   * scan, `not-applicable` after (a scan lists what applies).
   */
  stateOf(host: HostFacts, updateId: string, now: Date): HostUpdateState;
}

/** A forbidden decision (a function of the module: a closure per decision cost a name per call). */
function forbiddenBy(by: DecisionReason, matchedRules: readonly string[]): Decision {
  return { kind: 'forbidden', until: null, by, matchedRules };
}

/** Facts for an update the catalog does not know (reported by an agent ahead of a sync): only UpdateID rules can match it. */
const unknownUpdate = (updateId: string): UpdateFacts => ({
  updateId,
  kbs: [],
  title: '',
  classification: null,
  products: [],
  severity: null,
  releasedAt: null,
  cache: 'not-cached',
});

/**
 * Compiles the policy once for a set of inputs; answers are computed on demand and promotion
 * results are memoised per (update, ring) for the latest instant asked.
 *
 * @example
 *   const policy = createPolicy({ hosts, rules, rings, catalog, overrides: [] });
 *   policy.hostStates(hosts[0], now) // [{ updateId, decision: { kind: 'allowed', by: { kind: 'rule', ruleId: 'r1' } }, wapt: 'MISSING', … }]
 */
export function createPolicy(input: PolicyInput): Policy {
  const compiled: CompiledRule[] = input.rules.map(compileRule);
  const ringIndex = new Map(input.rings.map((r, i) => [r.name, i]));
  const reportersCache = new Map<string, Map<string, HostFacts[]>>();
  const promotions = new Map<string, PromotionResult | null>();

  const ringOf = (host: Pick<HostFacts, 'name' | 'ring'>): Ring | null => ringOfHost(host, input.rings);
  /**
   * The ring's hosts that reported this update: the only ones its promotion evidence counts.
   * Indexed once per ring (update → hosts), so a fleet-wide view costs one pass over the ring's
   * rows, not one pass per update.
   */
  const reportersIn = (ring: string, updateId: string): HostFacts[] => {
    let byUpdate = reportersCache.get(ring);
    if (!byUpdate) {
      byUpdate = new Map();
      for (const h of input.hosts) {
        if (ringOf(h)?.name !== ring) continue;
        for (const f of h.updates) {
          let list = byUpdate.get(f.updateId);
          if (!list) byUpdate.set(f.updateId, (list = []));
          list.push(h);
        }
      }
      reportersCache.set(ring, byUpdate);
    }
    return byUpdate.get(updateId) ?? [];
  };
  const overrideFor = (updateId: string, ring: string): PromotionOverride | null => {
    // The latest override for this pair wins (an admin can promote after halting).
    let found: PromotionOverride | null = null;
    for (const o of input.overrides)
      if (o.updateId === updateId && o.ring === ring && (!found || o.at >= found.at)) found = o;
    return found;
  };

  let promotionsAt: number | undefined;
  const promotion = (updateId: string, ringName: string, now: Date): PromotionResult | null => {
    // Only the latest instant's answers are kept: a policy the server keeps between requests is
    // asked at a new instant every time, and older answers would only grow the memo.
    if (promotionsAt !== now.getTime()) {
      promotions.clear();
      promotionsAt = now.getTime();
    }
    const key = `${updateId}\0${ringName}`;
    if (promotions.has(key)) return promotions.get(key)!;
    const index = ringIndex.get(ringName);
    let result: PromotionResult | null = null;
    if (index !== undefined && index > 0) {
      const to = input.rings[index]!;
      const from = input.rings[index - 1]!;
      const override = overrideFor(updateId, ringName);
      if (to.promotion || override)
        result = evaluatePromotion(updateId, from, to, reportersIn(from.name, updateId), override, now);
    }
    promotions.set(key, result);
    return result;
  };

  const decision = (host: Pick<HostFacts, 'name' | 'ring'>, updateId: string, now: Date): Decision => {
    const ring = ringOf(host);
    const update = input.catalog.get(updateId) ?? unknownUpdate(updateId);
    const verdict = evaluateRules(compiled, update, host.name, ring?.name ?? null);
    const matchedRules = verdict.matched;
    const rule = verdict.decisive;
    if (rule?.rule.action === 'forbid')
      return forbiddenBy({ kind: 'rule', ruleId: rule.rule.id, action: 'forbid' }, matchedRules);

    const override = ring ? overrideFor(updateId, ring.name) : null;
    if (ring && override?.action === 'halt')
      return forbiddenBy({ kind: 'override', ring: ring.name, action: 'halt', by: override.by }, matchedRules);

    let base: DecisionReason;
    if (rule) base = { kind: 'rule', ruleId: rule.rule.id, action: 'allow' };
    else if (ring?.defaultAllow) base = { kind: 'default-allow', ring: ring.name };
    else return forbiddenBy({ kind: 'default-deny', ring: ring?.name ?? null }, matchedRules);
    const severity = severityOf(update);
    if (
      ring &&
      !(rule?.explicit ?? false) &&
      ring.allowedSeverities !== null &&
      !ring.allowedSeverities.includes(severity)
    ) {
      return forbiddenBy({ kind: 'severity', ring: ring.name, severity }, matchedRules);
    }
    if (!ring) return { kind: 'allowed', until: null, by: base, matchedRules };

    const deferrals: { until: string | null; by: DecisionReason }[] = [];
    const gate = promotion(updateId, ring.name, now);
    if (gate) {
      const by: DecisionReason = gate.override
        ? { kind: 'override', ring: ring.name, action: gate.override.action, by: gate.override.by }
        : { kind: 'promotion', ring: ring.name, status: gate.status, evidence: gate.evidence };
      if (gate.status === 'halted') return forbiddenBy(by, matchedRules);
      if (gate.status === 'pending') deferrals.push({ until: gate.evidence.eligibleAt, by });
    }
    if (ring.installDelayDays > 0 && update.releasedAt) {
      const released = Date.parse(update.releasedAt);
      const until = released + ring.installDelayDays * DAY_MS;
      if (Number.isFinite(released) && now.getTime() < until) {
        deferrals.push({
          until: new Date(until).toISOString(),
          by: { kind: 'install-delay', ring: ring.name, days: ring.installDelayDays },
        });
      }
    }
    if (deferrals.length > 0) {
      // The one that ends last decides; "unknown" (waiting on evidence) counts as the latest.
      const last = deferrals.reduce((a, b) => (a.until === null ? a : b.until === null || b.until > a.until ? b : a));
      return { kind: 'deferred', until: last.until, by: last.by, matchedRules };
    }
    return { kind: 'allowed', until: null, by: base, matchedRules };
  };

  const build = (host: HostFacts, updateId: string, facts: HostUpdateFacts | undefined, now: Date): HostUpdateState => {
    const ring = ringOf(host);
    const update = input.catalog.get(updateId);
    const applicability = facts?.applicability ?? (host.lastScanAt === null ? 'unknown' : 'not-applicable');
    const d = decision(host, updateId, now);
    const delivery = deriveDelivery(facts, update?.cache ?? 'not-cached');
    return {
      host: host.name,
      ring: ring?.name ?? null,
      updateId,
      applicability,
      decision: d,
      delivery,
      wapt: waptState(applicability, d, delivery, ring?.directDownload ?? false),
      wsus: wsusState(applicability, delivery),
    };
  };

  return {
    ringOf,
    promotion,
    decision,
    hostStates: (host, now) => host.updates.map((f) => build(host, f.updateId, f, now)),
    stateOf: (host, updateId, now) =>
      build(
        host,
        updateId,
        host.updates.find((u) => u.updateId === updateId),
        now,
      ),
  };
}

/**
 * Every host × reported update of the fleet, decided. The one-call form of createPolicy.
 *
 * @example decide(hosts, rules, rings, catalog, [], new Date('2026-11-24T02:00:00Z'))
 */
export function decide(
  hosts: readonly HostFacts[],
  rules: readonly Rule[],
  rings: readonly Ring[],
  catalog: CatalogFacts,
  overrides: readonly PromotionOverride[],
  now: Date,
): HostUpdateState[] {
  const policy = createPolicy({ hosts, rules, rings, catalog, overrides });
  return hosts.flatMap((h) => policy.hostStates(h, now));
}
