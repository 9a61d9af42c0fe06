/** WAPT's and WSUS's states read off applicability × decision × delivery (docs/decisions.md has the table). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveDelivery, waptState, wsusState } from './states.ts';
import { needed } from './test-fixtures.ts';
import type { Applicability, Decision, HostDelivery, ServerCacheState } from './types.ts';

const allowed: Decision = {
  kind: 'allowed',
  until: null,
  by: { kind: 'default-allow', ring: 'pilot' },
  matchedRules: [],
};
const forbidden: Decision = {
  kind: 'forbidden',
  until: null,
  by: { kind: 'rule', ruleId: 'r', action: 'forbid' },
  matchedRules: ['r'],
};
const deferred: Decision = {
  kind: 'deferred',
  until: '2026-12-01T00:00:00Z',
  by: { kind: 'install-delay', ring: 'pilot', days: 7 },
  matchedRules: [],
};

const rows: [
  string,
  Applicability | 'unknown',
  HostDelivery,
  ServerCacheState,
  Decision,
  boolean,
  string | null,
  string,
  string,
][] = [
  // name, applicability, host delivery, cache, decision, directDownload → wapt, wsus, delivery
  [
    'needed, allowed, files not on the server',
    'needed',
    'none',
    'not-cached',
    allowed,
    false,
    'MISSING',
    'needed',
    'not-cached',
  ],
  [
    'needed, allowed, server downloading',
    'needed',
    'none',
    'downloading',
    allowed,
    false,
    'MISSING',
    'needed',
    'downloading-on-server',
  ],
  [
    'needed, allowed, direct download from Microsoft',
    'needed',
    'none',
    'not-cached',
    allowed,
    true,
    'PENDING',
    'needed',
    'not-cached',
  ],
  ['needed, allowed, cached', 'needed', 'none', 'cached', allowed, false, 'PENDING', 'needed', 'cached'],
  [
    'needed, allowed, on the host',
    'needed',
    'downloaded',
    'cached',
    allowed,
    false,
    'PENDING',
    'downloaded',
    'downloaded-on-host',
  ],
  ['needed, forbidden', 'needed', 'none', 'not-cached', forbidden, false, 'DISCARDED', 'needed', 'not-cached'],
  ['needed, deferred', 'needed', 'none', 'not-cached', deferred, false, 'PENDING', 'needed', 'not-cached'],
  ['needed, failed', 'needed', 'failed', 'cached', allowed, false, 'PENDING', 'failed', 'failed'],
  [
    'installed, waiting for reboot',
    'needed',
    'installed-pending-reboot',
    'cached',
    allowed,
    false,
    'PENDING',
    'installed-pending-reboot',
    'installed-pending-reboot',
  ],
  [
    'installed (scan), forbidden later',
    'installed',
    'none',
    'not-cached',
    forbidden,
    false,
    'OK',
    'installed',
    'installed',
  ],
  ['not applicable', 'not-applicable', 'none', 'not-cached', allowed, false, null, 'not-applicable', 'not-cached'],
  [
    'superseded is not counted as needed',
    'superseded',
    'none',
    'not-cached',
    allowed,
    false,
    null,
    'not-applicable',
    'not-cached',
  ],
  ['never scanned', 'unknown', 'none', 'not-cached', allowed, false, null, 'unknown', 'not-cached'],
];

for (const [name, applicability, hostDelivery, cache, decision, direct, wapt, wsus, delivery] of rows) {
  test(`states: ${name}`, () => {
    const facts =
      applicability === 'unknown'
        ? undefined
        : needed('u', {
            applicability,
            delivery: hostDelivery,
            hresult: hostDelivery === 'failed' ? '0x80070005' : null,
            attempts: hostDelivery === 'failed' ? 2 : 0,
          });
    const d = deriveDelivery(facts, cache);
    assert.equal(d.state, delivery);
    assert.equal(waptState(applicability, decision, d, direct), wapt);
    assert.equal(wsusState(applicability, d), wsus);
    if (hostDelivery === 'failed') assert.deepEqual([d.hresult, d.attempts], ['0x80070005', 2]);
  });
}

test('describeDecision names the rule or the setting that decided', async () => {
  const { describeDecision } = await import('./describe.ts');
  assert.equal(describeDecision(forbidden), 'forbidden — rule r (forbid)');
  assert.equal(describeDecision(deferred), 'deferred until 2026-12-01T00:00:00Z — ring pilot: installDelayDays 7');
  // A ring's default is not a prohibition: no rule forbids it, none allows it.
  assert.equal(
    describeDecision({ kind: 'forbidden', until: null, by: { kind: 'default-deny', ring: 'pilot' }, matchedRules: [] }),
    'forbidden — ring pilot allows only what a rule allows, and no rule allows it',
  );
  const evidence = {
    fromRing: 'pilot',
    toRing: 'broad',
    hosts: 4,
    installed: 3,
    failed: 1,
    successPercent: 75,
    failurePercent: 25,
    since: null,
    eligibleAt: null,
  };
  assert.equal(
    describeDecision({
      kind: 'forbidden',
      until: null,
      by: { kind: 'promotion', ring: 'broad', status: 'halted', evidence },
      matchedRules: [],
    }),
    'forbidden — promotion pilot → broad halted: 3 installed, 1 failed of 4 hosts (75% succeeded)',
  );
});
