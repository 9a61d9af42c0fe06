/**
 * Allow / forbid rules: validation (stable codes the server turns into 400s), matching one rule
 * against an update and a host, and merging every rule that applies (forbid always wins).
 *
 * Why explicit and broad allows differ: WAPT allows an update when it is "explicitly allowed" (by
 * UpdateID or KB) or when it matches the allowed classifications AND severities. We keep that:
 * an allow rule naming UpdateIDs or KBs is explicit and passes a ring's allowedSeverities; an allow
 * by classification, product, severity or title is broad and the ring's severities still apply.
 */
import { isGuid, anyHostMatches, normalizeKb } from './match.ts';
import {
  CLASSIFICATIONS,
  RULE_ACTIONS,
  RULE_SEVERITIES,
  type PolicyProblem,
  type Rule,
  type RuleSeverity,
  type UpdateFacts,
} from './types.ts';

const SELECTORS = ['updateIds', 'kbs', 'classifications', 'products', 'severities', 'titlePattern'] as const;
/** Longest title pattern accepted: a console field, not a program. */
export const MAX_TITLE_PATTERN_CHARS = 200;

const lower = (values: readonly string[] | undefined): string[] => (values ?? []).map((v) => v.trim().toLowerCase());
const nonEmpty = (values: readonly string[] | undefined): values is readonly string[] =>
  values !== undefined && values.length > 0;

/**
 * Checks a rule; returns every problem (empty: valid). `knownRings`, when given, also checks the
 * ring scope. Codes: RULE_BAD_ACTION, RULE_EMPTY_SELECTOR, RULE_BAD_UPDATE_ID, RULE_BAD_KB,
 * RULE_UNKNOWN_CLASSIFICATION, RULE_UNKNOWN_SEVERITY, RULE_BAD_PATTERN, RULE_BAD_HOST_PATTERN,
 * RULE_UNKNOWN_RING.
 *
 * @example validateRule({ id: 'r1', action: 'forbid', kbs: ['KB12x'] }) // [{ code: 'RULE_BAD_KB', path: 'kbs[0]', … }]
 */
export function validateRule(
  rule: Omit<Rule, 'id'> & { id?: string },
  knownRings?: readonly string[],
): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const add = (code: string, path: string, message: string): void => void problems.push({ code, path, message });
  if (!(RULE_ACTIONS as readonly string[]).includes(rule.action))
    add('RULE_BAD_ACTION', 'action', `action must be "allow" or "forbid", not ${JSON.stringify(rule.action)}`);
  const hasSelector = SELECTORS.some((k) =>
    k === 'titlePattern' ? (rule.titlePattern ?? '').trim() !== '' : nonEmpty(rule[k]),
  );
  if (!hasSelector)
    add(
      'RULE_EMPTY_SELECTOR',
      '',
      "a rule must name at least one of updateIds, kbs, classifications, products, severities or titlePattern; a rule matching everything is what a ring's defaultAllow is for",
    );
  (rule.updateIds ?? []).forEach((id, i) => {
    if (!isGuid(id))
      add(
        'RULE_BAD_UPDATE_ID',
        `updateIds[${i}]`,
        `${JSON.stringify(id)} is not an UpdateID (a GUID such as 0fa1201d-4330-4fa8-8ae9-b877473b6441)`,
      );
  });
  (rule.kbs ?? []).forEach((kb, i) => {
    if (normalizeKb(kb) === null)
      add('RULE_BAD_KB', `kbs[${i}]`, `${JSON.stringify(kb)} is not a KB number (write 5044444 or KB5044444)`);
  });
  const known = new Set(CLASSIFICATIONS.map((c) => c.toLowerCase()));
  (rule.classifications ?? []).forEach((c, i) => {
    if (!known.has(c.trim().toLowerCase()))
      add(
        'RULE_UNKNOWN_CLASSIFICATION',
        `classifications[${i}]`,
        `unknown classification ${JSON.stringify(c)}; known: ${CLASSIFICATIONS.join(', ')}`,
      );
  });
  (rule.products ?? []).forEach((p, i) => {
    if (p.trim() === '') add('RULE_EMPTY_SELECTOR', `products[${i}]`, 'a product name is empty');
  });
  const severities = new Set(RULE_SEVERITIES.map((s) => s.toLowerCase()));
  (rule.severities ?? []).forEach((s, i) => {
    if (!severities.has(s.trim().toLowerCase()))
      add(
        'RULE_UNKNOWN_SEVERITY',
        `severities[${i}]`,
        `unknown severity ${JSON.stringify(s)}; known: ${RULE_SEVERITIES.join(', ')}`,
      );
  });
  if (rule.titlePattern !== undefined && rule.titlePattern.trim() !== '') {
    if (rule.titlePattern.length > MAX_TITLE_PATTERN_CHARS)
      add('RULE_BAD_PATTERN', 'titlePattern', `the title pattern is longer than ${MAX_TITLE_PATTERN_CHARS} characters`);
    else {
      try {
        new RegExp(rule.titlePattern, 'i');
      } catch (error) {
        add(
          'RULE_BAD_PATTERN',
          'titlePattern',
          `the title pattern is not a valid regular expression: ${(error as Error).message}`,
        );
      }
    }
  }
  (rule.hosts ?? []).forEach((h, i) => {
    if (!/^[A-Za-z0-9._*?-]{1,253}$/.test(h))
      add(
        'RULE_BAD_HOST_PATTERN',
        `hosts[${i}]`,
        `${JSON.stringify(h)} is not a host name or pattern (letters, digits, . - _ and * ?)`,
      );
  });
  if (knownRings) {
    (rule.rings ?? []).forEach((r, i) => {
      if (!knownRings.includes(r))
        add(
          'RULE_UNKNOWN_RING',
          `rings[${i}]`,
          `no ring is named ${JSON.stringify(r)}; rings: ${knownRings.join(', ') || '(none)'}`,
        );
    });
  }
  return problems;
}

/** A rule compiled for fast matching (sets, one RegExp). */
export interface CompiledRule {
  readonly rule: Rule;
  /** Names UpdateIDs or KBs: passes a ring's allowedSeverities. */
  readonly explicit: boolean;
  matchesUpdate(u: UpdateFacts): boolean;
  appliesTo(host: string, ring: string | null): boolean;
}

/** Compiles a valid rule (validateRule first: an invalid pattern throws here). */
export function compileRule(rule: Rule): CompiledRule {
  const ids = nonEmpty(rule.updateIds) ? new Set(lower(rule.updateIds)) : null;
  const kbs = nonEmpty(rule.kbs) ? new Set(rule.kbs.map((k) => normalizeKb(k) ?? k)) : null;
  const classes = nonEmpty(rule.classifications) ? new Set(lower(rule.classifications)) : null;
  const products = nonEmpty(rule.products) ? new Set(lower(rule.products)) : null;
  const severities = nonEmpty(rule.severities) ? new Set(lower(rule.severities)) : null;
  const title = rule.titlePattern && rule.titlePattern.trim() !== '' ? new RegExp(rule.titlePattern, 'i') : null;
  const rings = nonEmpty(rule.rings) ? rule.rings : null;
  const hosts = nonEmpty(rule.hosts) ? rule.hosts : null;
  return {
    rule,
    explicit: ids !== null || kbs !== null,
    matchesUpdate(u) {
      if (ids && !ids.has(u.updateId.toLowerCase())) return false;
      if (kbs && !u.kbs.some((k) => kbs.has(k))) return false;
      if (classes && !(u.classification && classes.has(u.classification.toLowerCase()))) return false;
      if (products && !u.products.some((p) => products.has(p.toLowerCase()))) return false;
      if (severities && !severities.has(severityOf(u).toLowerCase())) return false;
      if (title && !title.test(u.title)) return false;
      return true;
    },
    appliesTo(host, ring) {
      if (!rings && !hosts) return true;
      return (
        (rings !== null && ring !== null && rings.includes(ring)) || (hosts !== null && anyHostMatches(hosts, host))
      );
    },
  };
}

/** The update's severity in rule vocabulary: `none` when it has none. */
export const severityOf = (u: Pick<UpdateFacts, 'severity'>): RuleSeverity => u.severity ?? 'none';

export interface RuleVerdict {
  /** The first matching forbid, else the first matching allow (explicit ones first), else null. */
  readonly decisive: CompiledRule | null;
  readonly matched: readonly string[];
}

/**
 * Merges every rule that applies to this host × update: forbid wins over any allow, whatever the
 * order or scope (a hard block must hold against an accidental broad allow); among allows an
 * explicit one (UpdateID/KB) is reported first because it also passes the severity filter.
 */
export function evaluateRules(
  rules: readonly CompiledRule[],
  update: UpdateFacts,
  host: string,
  ring: string | null,
): RuleVerdict {
  let forbid: CompiledRule | null = null;
  let explicitAllow: CompiledRule | null = null;
  let broadAllow: CompiledRule | null = null;
  const matched: string[] = [];
  for (const r of rules) {
    if (!r.appliesTo(host, ring) || !r.matchesUpdate(update)) continue;
    matched.push(r.rule.id);
    if (r.rule.action === 'forbid') forbid ??= r;
    else if (r.explicit) explicitAllow ??= r;
    else broadAllow ??= r;
  }
  return { decisive: forbid ?? explicitAllow ?? broadAllow, matched };
}

export interface KbTarget {
  readonly kb: string;
  /** Every UpdateID in the catalog carrying this KB (WAPT's KB4537759 maps to several). */
  readonly updateIds: readonly string[];
}

/**
 * What a rule's KBs stand for in this catalog: one KB can be several updates (per OS, per
 * architecture), and the console shows them all so nobody forbids "one KB" and is surprised.
 *
 * @example resolveRuleKbs({ kbs: ['4537759'] }, catalog) // [{ kb: '4537759', updateIds: ['…a', '…b', '…c'] }]
 */
export function resolveRuleKbs(rule: Pick<Rule, 'kbs'>, catalog: Iterable<UpdateFacts>): KbTarget[] {
  const wanted = (rule.kbs ?? []).map((k) => normalizeKb(k) ?? k);
  const byKb = new Map<string, string[]>(wanted.map((k) => [k, []]));
  for (const u of catalog) for (const kb of u.kbs) byKb.get(kb)?.push(u.updateId);
  return wanted.map((kb) => ({ kb, updateIds: [...new Set(byKb.get(kb) ?? [])].sort() }));
}
