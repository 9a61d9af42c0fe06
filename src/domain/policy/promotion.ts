/**
 * The promotion gate between two rings: may an update go from ring k (pilot) to ring k+1
 * (broad)? Pure: the evidence is counted from the previous ring's host facts, time is passed in.
 *
 * Counting: a host of the previous ring counts when the update applies to it (needed, installed,
 * or a failed attempt). `installed` = reported installed (after any reboot; a pending reboot is not
 * yet a success); `failed` = its last attempt failed. The success rate is installed / (installed +
 * failed): hosts still waiting say nothing yet. The soak starts when the minHosts-th host reported
 * its install ("since"), and the gate opens soakHours later if the rate still holds. A failure rate
 * above the limit halts the promotion at once, whatever the successes — one bad update in the
 * pilot must not reach the broad ring while someone is looking at it. A manual override (promote or
 * halt) wins over the evidence, and the evidence is still returned so the console can show both.
 */
import type { HostFacts, PromotionCriteria, PromotionOverride, PromotionResult, Ring } from './types.ts';

const HOUR_MS = 3_600_000;

const round1 = (n: number): number => Math.round(n * 10) / 10;

/**
 * @example
 *   evaluatePromotion('…', pilot, broad, pilotHosts, null, now)
 *   // { status: 'pending', reason: '3 of 5 hosts installed; soak until …', evidence: { hosts: 6, installed: 3, … } }
 */
export function evaluatePromotion(
  updateId: string,
  from: Ring,
  to: Ring,
  fromHosts: readonly HostFacts[],
  override: PromotionOverride | null,
  now: Date,
): PromotionResult {
  const criteria: PromotionCriteria = to.promotion ?? {
    minHosts: 0,
    minSuccessPercent: 0,
    soakHours: 0,
    maxFailurePercent: 100,
  };
  let hosts = 0;
  let failed = 0;
  const installedAt: number[] = [];
  for (const h of fromHosts) {
    const f = h.updates.find((u) => u.updateId === updateId);
    if (!f || f.applicability === 'not-applicable' || f.applicability === 'superseded') continue;
    hosts += 1;
    if (f.delivery === 'installed' || (f.applicability === 'installed' && f.delivery !== 'installed-pending-reboot')) {
      const at = Date.parse(f.installedAt ?? h.lastScanAt ?? '');
      installedAt.push(Number.isFinite(at) ? at : now.getTime());
    } else if (f.delivery === 'failed') failed += 1;
  }
  const installed = installedAt.length;
  const attempted = installed + failed;
  const successPercent = attempted === 0 ? null : round1((installed / attempted) * 100);
  const failurePercent = attempted === 0 ? null : round1((failed / attempted) * 100);
  installedAt.sort((a, b) => a - b);
  const reached =
    installed >= criteria.minHosts && successPercent !== null && successPercent >= criteria.minSuccessPercent;
  const sinceMs = reached ? installedAt[Math.max(0, criteria.minHosts - 1)]! : null;
  const eligibleMs = sinceMs === null ? null : sinceMs + criteria.soakHours * HOUR_MS;
  const evidence = {
    fromRing: from.name,
    toRing: to.name,
    hosts,
    installed,
    failed,
    successPercent,
    failurePercent,
    since: sinceMs === null ? null : new Date(sinceMs).toISOString(),
    eligibleAt: eligibleMs === null ? null : new Date(eligibleMs).toISOString(),
  };
  if (override?.action === 'halt')
    return { status: 'halted', reason: `halted by ${override.by} at ${override.at}`, evidence, override };
  if (override?.action === 'promote')
    return { status: 'met', reason: `promoted by ${override.by} at ${override.at}`, evidence, override };
  if (failed > 0 && failurePercent !== null && failurePercent > criteria.maxFailurePercent) {
    return {
      status: 'halted',
      reason: `${failed} of ${attempted} installs failed in ${from.name} (${failurePercent}% > ${criteria.maxFailurePercent}%)`,
      evidence,
      override: null,
    };
  }
  if (eligibleMs !== null && now.getTime() >= eligibleMs) {
    return {
      status: 'met',
      reason: `${installed} hosts of ${from.name} installed it, ${successPercent}% succeeded, for ${criteria.soakHours} h`,
      evidence,
      override: null,
    };
  }
  const reason =
    eligibleMs !== null
      ? `criteria met in ${from.name}; soak until ${evidence.eligibleAt}`
      : installed < criteria.minHosts
        ? `${installed} of ${criteria.minHosts} hosts of ${from.name} installed it`
        : `success rate ${successPercent ?? 0}% in ${from.name} is below ${criteria.minSuccessPercent}%`;
  return { status: 'pending', reason, evidence, override: null };
}
