/**
 * The pure decisions of one agent cycle: what to search for, which found updates to act on (and
 * why the others are left out), which of them go into the next install pass, how the cycle
 * ended, and whether the host reboots. cycle.ts does the I/O around these.
 */
import type { CycleOutcome, CycleRequest, Mode, RebootPolicy } from '../domain/agent-log.ts';
import { selectUpdates } from '../domain/filters.ts';
import type { UpdateRecord } from '../domain/update.ts';

/**
 * The WUA search criteria. We search broadly (software and drivers, not installed, not hidden)
 * and apply the filters client-side with selectUpdates: every update left out then appears in
 * the scan-result with its reason ("driver", "classification" …), a driver named by KB or id is
 * found, and online and offline scans use one criteria string. Ansible does the same.
 */
export const SEARCH_CRITERIA = 'IsInstalled=0 and IsHidden=0';

/** HRESULT WU_E_INSTALL_NOT_ALLOWED: another installation is running (or a reboot is pending). */
export const HRESULT_INSTALLER_BUSY = '0x80240016';

/** First wait between "is the installer still busy?" polls. */
export const BUSY_POLL_FIRST_MS = 5_000;
/** Longest wait between polls: a TrustedInstaller run can take an hour, a minute of lag is fine. */
export const BUSY_POLL_MAX_MS = 60_000;

/** Skip reasons the agent adds to the filter's own (src/domain/filters.ts SKIP_REASONS). */
export type AgentSkipReason = 'excluded' | 'loop' | 'failed-this-cycle';

export interface PassMemory {
  /** Installed successfully earlier in this cycle. */
  readonly installedThisCycle: ReadonlySet<string>;
  /** Failed to download or install earlier in this cycle: not retried before a reboot. */
  readonly failedThisCycle: ReadonlySet<string>;
}

export interface PassSelection {
  /** The updates to act on in this pass, in scan order. */
  readonly selected: readonly UpdateRecord[];
  readonly skipped: readonly { readonly updateId: string; readonly reason: string }[];
  /** Selected by the filters but installed before (earlier cycle or this one): a loop. */
  readonly loops: readonly string[];
}

/**
 * Applies the filters, the engine's exclusions, loop detection and this cycle's failures to one
 * scan. An update installed earlier in this run (or this cycle) that is offered again did not
 * stick — a silent rollback or a detection that never turns true — and installing it again would
 * loop forever.
 */
export function selectForPass(
  found: readonly UpdateRecord[],
  request: CycleRequest,
  memory: PassMemory,
  now: Date,
): PassSelection {
  const byFilters = selectUpdates(found, request.filters, now);
  const excluded = new Set(request.exclude.map((id) => id.toLowerCase()));
  const installedEarlier = new Set(request.installedEarlier.map((id) => id.toLowerCase()));
  const skipped: { updateId: string; reason: string }[] = byFilters.skipped.map((s) => ({
    updateId: s.update.updateId,
    reason: s.reason,
  }));
  const selected: UpdateRecord[] = [];
  const loops: string[] = [];
  for (const update of byFilters.selected) {
    const id = update.updateId.toLowerCase();
    let reason: AgentSkipReason | null = null;
    if (excluded.has(id)) reason = 'excluded';
    else if (installedEarlier.has(id) || memory.installedThisCycle.has(id)) reason = 'loop';
    else if (memory.failedThisCycle.has(id)) reason = 'failed-this-cycle';
    if (reason === null) selected.push(update);
    else skipped.push({ updateId: update.updateId, reason });
    if (reason === 'loop') loops.push(update.updateId);
  }
  return { selected, skipped, loops };
}

/**
 * The updates of the next install pass: an update that needs exclusive handling (impact
 * exclusive, e.g. a servicing stack) goes alone — the first one found; otherwise all the others.
 */
export function nextInstallBatch(selected: readonly UpdateRecord[]): readonly UpdateRecord[] {
  const exclusive = selected.find((u) => u.impact === 'exclusive');
  return exclusive ? [exclusive] : selected;
}

export interface OutcomeFacts {
  readonly aborted: boolean;
  readonly rebootRequired: boolean;
  readonly failed: number;
  readonly loops: number;
}

/** How an install or download cycle ended once there is nothing more it can do. */
export function decideOutcome(facts: OutcomeFacts): CycleOutcome {
  if (facts.aborted) return 'aborted';
  // A reboot may cure a failure (WU_E_UH_POSTREBOOTSTILLPENDING …), so it wins over `failed`.
  if (facts.rebootRequired) return 'reboot-required';
  if (facts.failed > 0) return 'failed';
  if (facts.loops > 0) return 'loop-detected';
  return 'done';
}

/**
 * Whether the agent reboots the host after this cycle.
 * - never (and any scan): never. if-required: when a reboot is required (or was pending at start).
 * - always: when anything was installed this cycle, or a reboot is required.
 * A failed, aborted or errored cycle with no reboot required does not reboot: the connector
 * decides about retries, and rebooting a host mid-cancel surprises people.
 */
export function decideWillReboot(
  mode: Mode,
  policy: RebootPolicy,
  outcome: CycleOutcome,
  rebootRequired: boolean,
  installedCount: number,
): boolean {
  // A scan or a download changes nothing that a reboot would finish; a pending reboot is reported.
  if (policy === 'never' || mode === 'scan') return false;
  if (outcome === 'aborted' || outcome === 'error') return false;
  if (outcome === 'reboot-pending') return true;
  if (policy === 'if-required') return rebootRequired;
  if (outcome === 'failed' && !rebootRequired) return false;
  return rebootRequired || installedCount > 0;
}

/** Capped exponential backoff less 0–20 % jitter, so many hosts do not poll in step. */
export function busyPollDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BUSY_POLL_MAX_MS, BUSY_POLL_FIRST_MS * 2 ** Math.max(0, attempt));
  return Math.round(base * (1 - 0.2 * random()));
}
