/**
 * From scan results to scan reports, pure. The agent keeps the inventory the server last
 * acknowledged; a new report is a delta against it (only what was added, changed or removed, with
 * the acknowledged seq as its base) or, with nothing acknowledged, a full report.
 */
import {
  AGENT_PROTOCOL_VERSION,
  type LastAttempt,
  type ReportedUpdate,
  type ScanReport,
} from '../../domain/agent-protocol.ts';
import type { UpdateRecord } from '../../domain/update.ts';

/** The inventory the server acknowledged: its seq and every update it holds for this host. */
export interface AckedInventory {
  readonly seq: number;
  readonly updates: readonly ReportedUpdate[];
}

/** One update as reported: applicability, whether WUA has its files, and the last attempt. */
export function reportedUpdate(
  u: UpdateRecord,
  applicability: ReportedUpdate['applicability'],
  attempts: Readonly<Record<string, LastAttempt>>,
): ReportedUpdate {
  const id = u.updateId.toLowerCase();
  return {
    updateId: id,
    revisionNumber: u.revisionNumber,
    kbs: [...u.kbs],
    applicability,
    downloaded: u.isDownloaded,
    lastAttempt: attempts[id] ?? null,
  };
}

/** The whole inventory from one scan (needed and installed), sorted by update id. */
export function inventoryOf(
  needed: readonly UpdateRecord[],
  installed: readonly UpdateRecord[],
  attempts: Readonly<Record<string, LastAttempt>>,
): ReportedUpdate[] {
  const byId = new Map<string, ReportedUpdate>();
  for (const u of installed) byId.set(u.updateId.toLowerCase(), reportedUpdate(u, 'installed', attempts));
  for (const u of needed) byId.set(u.updateId.toLowerCase(), reportedUpdate(u, 'needed', attempts));
  return [...byId.values()].sort((a, b) => a.updateId.localeCompare(b.updateId));
}

export interface ReportMeta {
  readonly scannedAt: string;
  readonly source: ScanReport['source'];
  readonly catalogSha256: string | null;
  readonly rebootPending: boolean;
}

/**
 * The report to send for `current`: a delta on `acked` when there is one, else full.
 *
 * @example buildReport(7, null, inventory, meta).baseSeq === null
 */
export function buildReport(
  seq: number,
  acked: AckedInventory | null,
  current: readonly ReportedUpdate[],
  meta: ReportMeta,
): ScanReport {
  const base = { protocol: AGENT_PROTOCOL_VERSION, seq, ...meta } as const;
  if (acked === null) return { ...base, baseSeq: null, updates: [...current], removed: [] };
  const before = new Map(acked.updates.map((u) => [u.updateId, JSON.stringify(u)]));
  const now = new Set(current.map((u) => u.updateId));
  return {
    ...base,
    baseSeq: acked.seq,
    updates: current.filter((u) => before.get(u.updateId) !== JSON.stringify(u)),
    removed: [...before.keys()].filter((id) => !now.has(id)),
  };
}
