import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpdateRecord } from '../../domain/update.ts';
import { buildReport, inventoryOf } from './inventory.ts';

const rec = (n: number, downloaded = false): UpdateRecord => ({
  updateId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  revisionNumber: 1,
  title: `u${n}`,
  kbs: [String(n)],
  msrcSeverity: null,
  classification: 'Security Updates',
  products: [],
  categories: [],
  isDownloaded: downloaded,
  isHidden: false,
  isMandatory: false,
  browseOnly: false,
  type: 'software',
  rebootBehavior: 'never',
  impact: 'normal',
  eulaAccepted: true,
  supersededUpdateIds: [],
  maxDownloadSize: 1,
  lastDeploymentChangeTime: '2026-11-10T00:00:00Z',
  supportUrl: null,
  downloadUrls: [],
});
const meta = {
  scannedAt: '2026-11-11T00:00:00Z',
  source: 'offline' as const,
  catalogSha256: null,
  rebootPending: false,
};

test('the first report is full; the next carries only what changed, with its base', () => {
  const first = inventoryOf([rec(1), rec(2)], [rec(3)], {});
  const full = buildReport(1, null, first, meta);
  assert.equal(full.baseSeq, null);
  assert.equal(full.updates.length, 3);

  // 1 was installed (with an attempt recorded), 2 disappeared (superseded), 4 appeared, 3 unchanged.
  const attempts = {
    [rec(1).updateId]: {
      phase: 'install' as const,
      resultCode: 'succeeded' as const,
      hresult: null,
      attempts: 1,
      at: '2026-11-11T01:00:00Z',
    },
  };
  const second = inventoryOf([rec(4)], [rec(1), rec(3)], attempts);
  const delta = buildReport(2, { seq: 1, updates: first }, second, meta);
  assert.equal(delta.baseSeq, 1);
  assert.deepEqual(
    delta.updates.map((u) => [u.kbs[0], u.applicability]),
    [
      ['1', 'installed'],
      ['4', 'needed'],
    ],
  );
  assert.deepEqual(delta.removed, [rec(2).updateId]);

  const nothing = buildReport(3, { seq: 2, updates: second }, second, meta);
  assert.deepEqual([nothing.updates.length, nothing.removed.length], [0, 0]);
});
