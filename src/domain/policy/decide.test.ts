/** The policy decision, table-driven: each row is a situation an administrator would recognise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPolicy, decide } from './decide.ts';
import { resolveRuleKbs } from './rules.ts';
import { NOW, host, hoursAgo, needed, ring, update } from './test-fixtures.ts';
import type { CatalogFacts, HostFacts, PromotionOverride, Ring, Rule, UpdateFacts } from './types.ts';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const B2 = '00000000-0000-4000-8000-0000000000b2';
const catalogOf = (...us: UpdateFacts[]): CatalogFacts => new Map(us.map((u) => [u.updateId, u]));
const CATALOG = catalogOf(
  update(A, { kbs: ['5000001'], title: '2026-11 Cumulative Update (KB5000001)', severity: 'Critical' }),
  // One KB, two UpdateIDs (x64 and arm64), as WAPT's KB4537759.
  update(B, { kbs: ['4537759'], title: 'Security Update for Adobe Flash (KB4537759) x64', severity: 'Moderate' }),
  update(B2, { kbs: ['4537759'], title: 'Security Update for Adobe Flash (KB4537759) arm64', severity: 'Moderate' }),
);
const PILOT = ring('pilot', { members: ['pilot-*'], defaultAllow: true });
const web = host('web01', 'pilot', [needed(A), needed(B), needed(B2)]);

interface Row {
  readonly name: string;
  readonly rules: Rule[];
  readonly rings?: Ring[];
  readonly h?: HostFacts;
  readonly updateId: string;
  readonly want: string;
  readonly by?: string;
}

const rows: Row[] = [
  {
    name: 'defaultAllow lets an update through with no rule',
    rules: [],
    updateId: A,
    want: 'allowed',
    by: 'default-allow',
  },
  {
    name: 'forbid by KB wins over an allow by UpdateID',
    rules: [
      { id: 'allow', action: 'allow', updateIds: [A] },
      { id: 'no', action: 'forbid', kbs: ['KB5000001'] },
    ],
    updateId: A,
    want: 'forbidden',
    by: 'rule:no',
  },
  {
    name: 'forbid wins whatever the order',
    rules: [
      { id: 'no', action: 'forbid', classifications: ['Security Updates'] },
      { id: 'yes', action: 'allow', kbs: ['5000001'] },
    ],
    updateId: A,
    want: 'forbidden',
    by: 'rule:no',
  },
  {
    name: 'a forbid scoped to another ring does not apply',
    rules: [{ id: 'no', action: 'forbid', kbs: ['5000001'], rings: ['broad'] }],
    updateId: A,
    want: 'allowed',
    by: 'default-allow',
  },
  {
    name: 'a forbid scoped to this host applies',
    rules: [{ id: 'no', action: 'forbid', kbs: ['5000001'], hosts: ['WEB*'] }],
    updateId: A,
    want: 'forbidden',
    by: 'rule:no',
  },
  {
    name: 'defaultAllow false: an update no rule names is forbidden',
    rules: [],
    rings: [ring('pilot')],
    updateId: A,
    want: 'forbidden',
    by: 'default-deny',
  },
  {
    name: 'defaultAllow false: an allow rule lets it through',
    rules: [{ id: 'sec', action: 'allow', classifications: ['security updates'] }],
    rings: [ring('pilot')],
    updateId: A,
    want: 'allowed',
    by: 'rule:sec',
  },
  {
    name: 'defaultAllow false: allowing B does not allow A',
    rules: [{ id: 'b', action: 'allow', updateIds: [B] }],
    rings: [ring('pilot')],
    updateId: A,
    want: 'forbidden',
    by: 'default-deny',
  },
  {
    name: 'allowedSeverities keeps a Moderate update out of a Critical-only ring',
    rules: [],
    rings: [ring('pilot', { defaultAllow: true, allowedSeverities: ['Critical'] })],
    updateId: B,
    want: 'forbidden',
    by: 'severity',
  },
  {
    name: 'allowedSeverities lets a Critical update in',
    rules: [],
    rings: [ring('pilot', { defaultAllow: true, allowedSeverities: ['Critical'] })],
    updateId: A,
    want: 'allowed',
    by: 'default-allow',
  },
  {
    name: 'a broad allow (classification) still obeys allowedSeverities',
    rules: [{ id: 'sec', action: 'allow', classifications: ['Security Updates'] }],
    rings: [ring('pilot', { allowedSeverities: ['Critical'] })],
    updateId: B,
    want: 'forbidden',
    by: 'severity',
  },
  {
    name: 'an explicit allow by KB passes allowedSeverities',
    rules: [{ id: 'kb', action: 'allow', kbs: ['4537759'] }],
    rings: [ring('pilot', { allowedSeverities: ['Critical'] })],
    updateId: B,
    want: 'allowed',
    by: 'rule:kb',
  },
  {
    name: 'a title pattern forbids',
    rules: [{ id: 'flash', action: 'forbid', titlePattern: 'adobe\\s+flash' }],
    updateId: B,
    want: 'forbidden',
    by: 'rule:flash',
  },
  {
    name: 'a host in no ring gets nothing by default',
    rules: [],
    h: host('lonely', null, [needed(A)]),
    updateId: A,
    want: 'forbidden',
    by: 'default-deny',
  },
  {
    name: 'a host in no ring gets what a host-scoped allow names',
    rules: [{ id: 'l', action: 'allow', kbs: ['5000001'], hosts: ['lonely'] }],
    h: host('lonely', null, [needed(A)]),
    updateId: A,
    want: 'allowed',
    by: 'rule:l',
  },
  {
    name: 'ring membership by pattern',
    rules: [],
    h: host('PILOT-07', null, [needed(A)]),
    updateId: A,
    want: 'allowed',
    by: 'default-allow',
  },
  {
    name: 'an update the catalog does not know is forbidden unless named by UpdateID',
    rules: [{ id: 'sec', action: 'allow', classifications: ['Security Updates'] }],
    rings: [ring('pilot')],
    updateId: 'ffffffff-0000-4000-8000-000000000000',
    want: 'forbidden',
    by: 'default-deny',
  },
];

const byLabel = (d: { by: { kind: string; ruleId?: string } }): string =>
  d.by.kind === 'rule' ? `rule:${d.by.ruleId}` : d.by.kind;

for (const row of rows) {
  test(`decision: ${row.name}`, () => {
    const h = row.h ?? web;
    const policy = createPolicy({
      hosts: [h],
      rules: row.rules,
      rings: row.rings ?? [PILOT],
      catalog: CATALOG,
      overrides: [],
    });
    const d = policy.decision(h, row.updateId, NOW);
    assert.equal(d.kind, row.want);
    if (row.by) assert.equal(byLabel(d), row.by);
  });
}

test('a KB with several UpdateIDs: forbidding the KB forbids every one, and the rule shows them', () => {
  const rules: Rule[] = [{ id: 'flash', action: 'forbid', kbs: ['KB4537759'] }];
  const states = decide([web], rules, [PILOT], CATALOG, [], NOW);
  const forbidden = states
    .filter((s) => s.decision.kind === 'forbidden')
    .map((s) => s.updateId)
    .sort();
  assert.deepEqual(forbidden, [B, B2].sort());
  assert.deepEqual(states.find((s) => s.updateId === A)?.decision.kind, 'allowed');
  assert.deepEqual(resolveRuleKbs(rules[0]!, CATALOG.values()), [{ kb: '4537759', updateIds: [B, B2].sort() }]);
  // The forbidden, needed updates show DISCARDED; the allowed, cached one PENDING.
  assert.deepEqual(
    states.map((s) => [s.updateId, s.wapt]).sort(),
    [
      [A, 'PENDING'],
      [B, 'DISCARDED'],
      [B2, 'DISCARDED'],
    ].sort(),
  );
});

test('installDelayDays: released yesterday is deferred until its date; a week later it is allowed', () => {
  const released = new Date(NOW.getTime() - 86_400_000).toISOString();
  const catalog = catalogOf(update(A, { releasedAt: released }));
  const rings = [ring('pilot', { defaultAllow: true, installDelayDays: 3 })];
  const before = createPolicy({ hosts: [web], rules: [], rings, catalog, overrides: [] }).decision(web, A, NOW);
  assert.equal(before.kind, 'deferred');
  assert.equal(before.until, new Date(Date.parse(released) + 3 * 86_400_000).toISOString());
  assert.equal(before.by.kind, 'install-delay');
  const later = new Date(Date.parse(before.until!) + 1);
  const after = createPolicy({ hosts: [web], rules: [], rings, catalog, overrides: [] }).decision(web, A, later);
  assert.equal(after.kind, 'allowed');
  // A deferred update is not DISCARDED: it will go in by itself.
  assert.equal(decide([web], [], rings, catalog, [], NOW).find((s) => s.updateId === A)?.wapt, 'PENDING');
});

// ---------------------------------------------------------------- promotion through rings

const GATE = { minHosts: 3, minSuccessPercent: 90, soakHours: 24, maxFailurePercent: 20 };
const RINGS: Ring[] = [
  ring('pilot', { defaultAllow: true }),
  ring('broad', { members: ['*'], defaultAllow: true, promotion: GATE }),
];
const ok = (hAgo: number) =>
  needed(A, { applicability: 'installed', delivery: 'installed', installedAt: hoursAgo(hAgo) });
const fail = () => needed(A, { delivery: 'failed', hresult: '0x80242016', attempts: 2 });
const fleet = (pilotFacts: ReturnType<typeof needed>[]): HostFacts[] => [
  ...pilotFacts.map((f, i) => host(`p${i}`, 'pilot', [f])),
  host('b0', 'broad', [needed(A)]),
];
const broadDecision = (hosts: HostFacts[], overrides: PromotionOverride[] = [], now = NOW) =>
  createPolicy({ hosts, rules: [], rings: RINGS, catalog: catalogOf(update(A)), overrides }).decision(
    hosts.at(-1)!,
    A,
    now,
  );

test('promotion met: 3 pilot installs, 100 %, installed 30 h ago → allowed in broad', () => {
  const d = broadDecision(fleet([ok(40), ok(35), ok(30), needed(A)]));
  assert.equal(d.kind, 'allowed');
});

test('promotion not met: only 2 installs → deferred in broad with the evidence, no date yet', () => {
  const d = broadDecision(fleet([ok(40), ok(35), needed(A)]));
  assert.equal(d.kind, 'deferred');
  assert.equal(d.until, null);
  assert.ok(d.by.kind === 'promotion');
  assert.deepEqual(
    {
      hosts: d.by.evidence.hosts,
      installed: d.by.evidence.installed,
      failed: d.by.evidence.failed,
      rate: d.by.evidence.successPercent,
    },
    { hosts: 3, installed: 2, failed: 0, rate: 100 },
  );
});

test('promotion soaking: criteria met 10 h ago → deferred until since + 24 h, then allowed', () => {
  const hosts = fleet([ok(40), ok(20), ok(10)]);
  const d = broadDecision(hosts);
  assert.equal(d.kind, 'deferred');
  assert.ok(d.by.kind === 'promotion');
  assert.equal(d.by.evidence.since, hoursAgo(10));
  assert.equal(d.until, new Date(NOW.getTime() + 14 * 3_600_000).toISOString());
  assert.equal(broadDecision(hosts, [], new Date(Date.parse(d.until!))).kind, 'allowed');
});

test('promotion halted: 1 failure in 4 (25 % > 20 %) forbids the update in broad, with evidence', () => {
  const d = broadDecision(fleet([ok(40), ok(35), ok(30), fail()]));
  assert.equal(d.kind, 'forbidden');
  assert.ok(d.by.kind === 'promotion');
  assert.equal(d.by.status, 'halted');
  assert.equal(d.by.evidence.failurePercent, 25);
  assert.equal(d.by.evidence.failed, 1);
});

test('manual promote and halt override the evidence; the latest override wins', () => {
  const early = fleet([needed(A)]);
  assert.equal(
    broadDecision(early, [{ updateId: A, ring: 'broad', action: 'promote', by: 'alice', at: hoursAgo(1) }]).kind,
    'allowed',
  );
  const good = fleet([ok(40), ok(35), ok(30)]);
  const halted = broadDecision(good, [{ updateId: A, ring: 'broad', action: 'halt', by: 'bob', at: hoursAgo(1) }]);
  assert.equal(halted.kind, 'forbidden');
  assert.equal(halted.by.kind, 'override');
  const both: PromotionOverride[] = [
    { updateId: A, ring: 'broad', action: 'halt', by: 'bob', at: hoursAgo(2) },
    { updateId: A, ring: 'broad', action: 'promote', by: 'alice', at: hoursAgo(1) },
  ];
  assert.equal(broadDecision(early, both).kind, 'allowed');
});

test('a pilot install pending its reboot is not a success yet', () => {
  const pending = () => needed(A, { delivery: 'installed-pending-reboot', installedAt: hoursAgo(50) });
  const d = broadDecision(fleet([ok(40), ok(35), pending()]));
  assert.equal(d.kind, 'deferred');
});
