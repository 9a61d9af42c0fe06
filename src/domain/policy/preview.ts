/**
 * The console's rule preview (issue 8): what would change if the rules went from `before` to
 * `after`, counted over the fleet, before anything is saved. Only updates a host still needs are
 * counted — forbidding an update that is installed everywhere changes nothing a person would see.
 */
import { createPolicy, type PolicyInput } from './decide.ts';
import type { Decision, Rule } from './types.ts';

/** Changed pairs listed in full up to this many; counts are always complete. */
export const PREVIEW_SAMPLE_LIMIT = 50;

export interface PreviewCount {
  readonly updates: number;
  readonly hosts: number;
  /** host × update pairs */
  readonly pairs: number;
}

export interface PreviewChange {
  readonly host: string;
  readonly updateId: string;
  readonly before: Decision['kind'];
  readonly after: Decision['kind'];
}

export interface RulePreview {
  /** Needed pairs that become forbidden. */
  readonly forbids: PreviewCount;
  /** Needed pairs that become allowed (install in the next window). */
  readonly allows: PreviewCount;
  /** Needed pairs that become deferred. */
  readonly defers: PreviewCount;
  /** Needed pairs allowed before and not any more: installs that were due and will not happen. */
  readonly cancelledInstalls: number;
  /** The first changes, for the preview's table. */
  readonly sample: readonly PreviewChange[];
}

/**
 * @example
 *   previewRuleChange(rules, [...rules, { id: 'new', action: 'forbid', kbs: ['5044444'] }], fleet, now)
 *   // { forbids: { updates: 2, hosts: 40, pairs: 80 }, cancelledInstalls: 80, … }
 */
export function previewRuleChange(
  before: readonly Rule[],
  after: readonly Rule[],
  fleet: Omit<PolicyInput, 'rules'>,
  now: Date,
): RulePreview {
  const was = createPolicy({ ...fleet, rules: before });
  const will = createPolicy({ ...fleet, rules: after });
  const tally = () => ({ updates: new Set<string>(), hosts: new Set<string>(), pairs: 0 });
  const forbids = tally();
  const allows = tally();
  const defers = tally();
  let cancelledInstalls = 0;
  const sample: PreviewChange[] = [];
  for (const host of fleet.hosts) {
    for (const f of host.updates) {
      if (f.applicability !== 'needed' || f.delivery === 'installed' || f.delivery === 'installed-pending-reboot')
        continue;
      const a = was.decision(host, f.updateId, now).kind;
      const b = will.decision(host, f.updateId, now).kind;
      if (a === b) continue;
      const t = b === 'forbidden' ? forbids : b === 'allowed' ? allows : defers;
      t.updates.add(f.updateId);
      t.hosts.add(host.name);
      t.pairs += 1;
      if (a === 'allowed') cancelledInstalls += 1;
      if (sample.length < PREVIEW_SAMPLE_LIMIT)
        sample.push({ host: host.name, updateId: f.updateId, before: a, after: b });
    }
  }
  const count = (t: ReturnType<typeof tally>): PreviewCount => ({
    updates: t.updates.size,
    hosts: t.hosts.size,
    pairs: t.pairs,
  });
  return { forbids: count(forbids), allows: count(allows), defers: count(defers), cancelledInstalls, sample };
}
