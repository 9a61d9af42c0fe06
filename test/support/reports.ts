/**
 * Scan reports as an agent sends them, for the server tests: one shape instead of a hand-built
 * object in every file, so a protocol change is made once.
 */
import assert from 'node:assert/strict';
import { AGENT_PROTOCOL_VERSION, type ReportedUpdate, type ScanReport } from '../../src/domain/agent-protocol.ts';
import type { TestApp } from './server-harness.ts';

/** One update of a report, not downloaded and never attempted unless `extra` says otherwise. */
export function reportedUpdate(
  updateId: string,
  kb: string,
  applicability: ReportedUpdate['applicability'],
  extra: Partial<ReportedUpdate> = {},
): ReportedUpdate {
  return { updateId, revisionNumber: 1, kbs: [kb], applicability, downloaded: false, lastAttempt: null, ...extra };
}

/** A full report (no `baseSeq`: the host's whole inventory), scanned at `scannedAt`. */
export function fullReport(
  seq: number,
  scannedAt: Date | string,
  updates: readonly ReportedUpdate[],
  options: { source?: ScanReport['source']; rebootPending?: boolean } = {},
): ScanReport {
  return {
    protocol: AGENT_PROTOCOL_VERSION,
    seq,
    baseSeq: null,
    scannedAt: typeof scannedAt === 'string' ? scannedAt : scannedAt.toISOString(),
    source: options.source ?? 'online',
    catalogSha256: null,
    rebootPending: options.rebootPending ?? false,
    removed: [],
    updates: [...updates],
  };
}

/** `POST /api/v1/agent/reports` with the agent's credential; fails the test unless the server applied it. */
export async function sendReport(t: TestApp, credential: string, report: ScanReport): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/agent/reports',
    headers: { authorization: credential },
    payload: report,
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(res.json(), { ackedSeq: report.seq, status: 'applied' });
}
