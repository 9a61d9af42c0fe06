/** The rule preview: what a new rule would change, counted before it is saved. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { previewRuleChange } from './preview.ts';
import { NOW, host, needed, ring, update } from './test-fixtures.ts';
import type { Rule } from './types.ts';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const catalog = new Map([update(A, { kbs: ['5000001'] }), update(B, { kbs: ['5000002'] })].map((u) => [u.updateId, u]));
const rings = [ring('pilot', { defaultAllow: true })];
const hosts = [
  host('web01', 'pilot', [needed(A), needed(B)]),
  host('web02', 'pilot', [needed(A), needed(B, { applicability: 'installed', delivery: 'installed' })]),
  host('web03', 'pilot', [needed(B)]),
];

test('forbidding one KB: counts the needed updates and hosts it stops, and the cancelled installs', () => {
  const after: Rule[] = [{ id: 'no', action: 'forbid', kbs: ['5000001'] }];
  const p = previewRuleChange([], after, { hosts, rings, catalog, overrides: [] }, NOW);
  assert.deepEqual(p.forbids, { updates: 1, hosts: 2, pairs: 2 });
  assert.equal(p.cancelledInstalls, 2);
  assert.deepEqual(p.allows, { updates: 0, hosts: 0, pairs: 0 });
  assert.deepEqual(p.sample.map((c) => c.host).sort(), ['web01', 'web02']);
});

test('an installed update is not counted; removing the rule again shows the allows', () => {
  const rule: Rule[] = [{ id: 'no', action: 'forbid', kbs: ['5000002'] }];
  const p = previewRuleChange([], rule, { hosts, rings, catalog, overrides: [] }, NOW);
  assert.deepEqual(p.forbids, { updates: 1, hosts: 2, pairs: 2 }); // web02 has it installed
  const back = previewRuleChange(rule, [], { hosts, rings, catalog, overrides: [] }, NOW);
  assert.deepEqual(back.allows, { updates: 1, hosts: 2, pairs: 2 });
  assert.equal(back.cancelledInstalls, 0);
});
