/**
 * Human text for a decision's reason: what the console's "why" column and the server's
 * `decided_by` show. Pure; one line, naming the rule or the ring setting.
 */
import type { Decision, DecisionReason } from './types.ts';

/**
 * @example describeReason({ kind: 'install-delay', ring: 'broad', days: 7 }) // 'ring broad: installDelayDays 7'
 */
export function describeReason(by: DecisionReason): string {
  switch (by.kind) {
    case 'rule':
      return `rule ${by.ruleId} (${by.action})`;
    case 'default-allow':
      return `ring ${by.ring}: defaultAllow`;
    case 'default-deny':
      // Nothing forbids it: the ring allows only what a rule allows (defaultAllow false), and none does.
      return by.ring
        ? `ring ${by.ring} allows only what a rule allows, and no rule allows it`
        : 'no ring, and no rule allows it';
    case 'severity':
      return `ring ${by.ring}: severity ${by.severity} is not in allowedSeverities`;
    case 'install-delay':
      return `ring ${by.ring}: installDelayDays ${by.days}`;
    case 'promotion': {
      const e = by.evidence;
      const rate = e.successPercent === null ? 'no attempt yet' : `${e.successPercent}% succeeded`;
      return `promotion ${e.fromRing} → ${e.toRing} ${by.status}: ${e.installed} installed, ${e.failed} failed of ${e.hosts} hosts (${rate})`;
    }
    case 'override':
      return `${by.action === 'halt' ? 'halted' : 'promoted'} into ${by.ring} by ${by.by}`;
  }
}

/** "deferred until 2026-12-01T00:00:00.000Z — ring broad: installDelayDays 7". */
export function describeDecision(d: Decision): string {
  const head = d.kind === 'deferred' ? `deferred${d.until ? ` until ${d.until}` : ''}` : d.kind;
  return `${head} — ${describeReason(d.by)}`;
}
