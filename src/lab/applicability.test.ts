import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applicableUpdates, installedUpdates } from './applicability.ts';
import type { InstalledUpdate } from './host-state.ts';
import { parseScenario } from './scenario.ts';

// ssu → cu (needs ssu) → net (needs cu and its reboot); cu2 supersedes cu supersedes cu-old;
// s19 is for another product.
const scenario = parseScenario(
  `
catalog:
  - { key: ssu, title: SSU, classification: Security Updates, products: [WS2022], released: 2026-11-11 }
  - { key: cu-old, title: CU Oct, classification: Security Updates, products: [WS2022], released: 2026-10-14, reboot: always }
  - { key: cu, title: CU Nov, classification: Security Updates, products: [WS2022], released: 2026-11-11, reboot: always, requires: [ssu], supersedes: [cu-old] }
  - { key: cu2, title: CU Dec, classification: Security Updates, products: [WS2022], released: 2026-12-09, reboot: always, supersedes: [cu] }
  - { key: net, title: .NET, classification: Updates, products: [WS2022, WS2019], released: 2026-11-11, requires: [cu] }
  - { key: s19, title: SSU 2019, classification: Security Updates, products: [WS2019], released: 2026-11-11 }
hosts:
  - { name: h22, product: WS2022 }
  - { name: h19, product: WS2019 }
`,
  'table.yaml',
);

const done: InstalledUpdate = { installedAt: '2026-11-20T00:00:00.000Z', rebootDone: true };
const pending: InstalledUpdate = { installedAt: '2026-11-20T00:00:00.000Z', rebootDone: false };

describe('applicableUpdates', () => {
  const table: { name: string; host: string; installed: Record<string, InstalledUpdate>; expected: string[] }[] = [
    {
      name: 'fresh 2022 host: whatever has no missing prerequisite',
      host: 'h22',
      installed: {},
      expected: ['ssu', 'cu-old', 'cu2'],
    },
    { name: 'product filter: a 2019 host sees only 2019 updates', host: 'h19', installed: {}, expected: ['s19'] },
    {
      name: 'a prerequisite installed makes the dependent applicable',
      host: 'h22',
      installed: { ssu: done },
      expected: ['cu-old', 'cu', 'cu2'],
    },
    {
      name: 'a prerequisite whose reboot is pending does not count',
      host: 'h22',
      installed: { ssu: done, cu: pending },
      expected: ['cu2'],
    },
    {
      name: 'the reboot done: the dependent appears',
      host: 'h22',
      installed: { ssu: done, cu: done },
      expected: ['cu2', 'net'],
    },
    {
      name: 'installed updates are not applicable',
      host: 'h22',
      installed: { ssu: done, 'cu-old': done },
      expected: ['cu', 'cu2'],
    },
    {
      name: 'superseded by an installed update (transitively) is not applicable',
      host: 'h22',
      installed: { cu2: done },
      expected: ['ssu'],
    },
    { name: 'prerequisite on another product is still required', host: 'h19', installed: { s19: done }, expected: [] },
  ];
  for (const row of table) {
    it(row.name, () => {
      const host = scenario.hostByName.get(row.host);
      assert.ok(host);
      assert.deepEqual(
        applicableUpdates(scenario, host, { installed: row.installed }).map((e) => e.key),
        row.expected,
      );
    });
  }
});

describe('installedUpdates', () => {
  it('lists installed updates of the host product only', () => {
    const host = scenario.hostByName.get('h19');
    assert.ok(host);
    assert.deepEqual(
      installedUpdates(scenario, host, { installed: { s19: done, ssu: done } }).map((e) => e.key),
      ['s19'],
    );
  });
});
