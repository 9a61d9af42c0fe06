// The console's grids (/hosts, /updates, /overview, one host's updates) answer from a fleet view
// the server keeps between requests (src/server/fleet/fleet-cache.ts, fleet-grid.ts). This suite
// proves the answers equal the whole-fleet computation — every host's rows read from the store and
// the pure policy run over every host × update — after agents report through the gateway, after a
// rule change, after the clock moves past install delays and promotion soaks, and after a host is
// revoked, on SQLite and PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { enrollRequest, enrollToken, forEachStore, testApp, type TestApp } from './support/server-harness.ts';
import { AGENT_PROTOCOL_VERSION, type ReportedUpdate } from '../src/domain/agent-protocol.ts';
import { fullReport, reportedUpdate, sendReport } from './support/reports.ts';
import {
  createPolicy,
  WAPT_STATES,
  WSUS_STATES,
  type HostFacts,
  type UpdateFacts,
} from '../src/domain/policy/index.ts';
import {
  catalogFacts,
  loadOverrides,
  loadRings,
  loadRules,
  reportedOnlyFacts,
} from '../src/server/fleet/policy-view.ts';
import { seedFleet, seedUpdateId } from '../bench/console-grids-seed.ts';

const DAY_MS = 86_400_000;
const UNKNOWN = '99999999-0000-4000-8000-000000000001';
type Counts = Record<string, number>;

/** The whole-fleet computation, straight from the store: what the grids must equal. */
async function wholeFleet(t: TestApp) {
  const db = t.store.db;
  const now = t.clock.now();
  const hosts = await db.selectFrom('hosts').selectAll().orderBy('key').execute();
  const rows = await db.selectFrom('host_updates').selectAll().orderBy('host_key').orderBy('update_id').execute();
  const catalog = new Map<string, UpdateFacts>(
    await catalogFacts(db, [...new Set(rows.map((r) => r.update_id))], () => 'not-cached'),
  );
  for (const r of rows)
    if (!catalog.has(r.update_id)) catalog.set(r.update_id, reportedOnlyFacts(r.update_id, r.kb, r.title));
  const facts = hosts.map((h): HostFacts => ({
    name: h.name,
    ring: h.ring,
    lastScanAt: h.last_scan_at,
    updates: rows
      .filter((r) => r.host_key === h.key)
      .map((r) => ({
        updateId: r.update_id,
        applicability: r.applicability as never,
        delivery: r.delivery as never,
        hresult: r.hresult,
        attempts: r.attempts,
        installedAt: r.installed_at,
      })),
  }));
  const policy = createPolicy({
    hosts: facts.filter((_, i) => !hosts[i]!.revoked_at),
    rules: await loadRules(db),
    rings: await loadRings(db),
    catalog,
    overrides: await loadOverrides(db),
  });
  const zero = (keys: readonly string[]): Counts => Object.fromEntries(keys.map((k) => [k, 0]));
  const perHost = new Map<string, { counts: Counts; wsusCounts: Counts }>();
  const perUpdate = new Map<string, { counts: Counts; wsusCounts: Counts; decisions: Counts }>();
  const hostUpdates = new Map<
    string,
    { updateId: string; state: string | null; decision: string; until: string | null }[]
  >();
  hosts.forEach((h, i) => {
    const states = policy.hostStates(facts[i]!, now);
    const c = { counts: zero(WAPT_STATES), wsusCounts: zero(WSUS_STATES) };
    for (const s of states) {
      if (s.wapt) c.counts[s.wapt]! += 1;
      c.wsusCounts[s.wsus]! += 1;
      if (h.revoked_at) continue;
      let u = perUpdate.get(s.updateId);
      if (!u) {
        u = {
          counts: zero(WAPT_STATES),
          wsusCounts: zero(WSUS_STATES),
          decisions: zero(['allowed', 'forbidden', 'deferred']),
        };
        perUpdate.set(s.updateId, u);
      }
      if (s.wapt) u.counts[s.wapt]! += 1;
      u.wsusCounts[s.wsus]! += 1;
      if (s.applicability === 'needed') u.decisions[s.decision.kind]! += 1;
    }
    perHost.set(h.name, c);
    hostUpdates.set(
      h.name,
      states.map((s) => ({ updateId: s.updateId, state: s.wapt, decision: s.decision.kind, until: s.decision.until })),
    );
  });
  return { perHost, perUpdate, hostUpdates, hosts };
}

async function get(t: TestApp, url: string) {
  const r = await t.app.inject({ url, headers: { authorization: t.bearer.viewer } });
  assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
  return r.json();
}

/** Every grid answer against the whole-fleet computation; returns the fleet's WAPT totals. */
async function assertGridsEqualWholeFleet(t: TestApp, when: string): Promise<Counts> {
  const expected = await wholeFleet(t);
  const hosts = await get(t, '/api/v1/hosts?limit=1000');
  assert.equal(hosts.total, expected.perHost.size, when);
  for (const h of hosts.hosts)
    assert.deepEqual(
      { counts: h.counts, wsusCounts: h.wsusCounts },
      expected.perHost.get(h.name),
      `${when}: host ${h.name}`,
    );
  // What is not a decision is read fresh too: a check-in moves lastSeenAt without changing a count.
  for (const h of hosts.hosts) {
    const row = expected.hosts.find((x) => x.name === h.name)!;
    assert.deepEqual(
      [h.lastSeenAt, h.rebootPending, h.revoked],
      [row.last_seen_at, Boolean(Number(row.reboot_pending)), row.revoked_at !== null],
      `${when}: host ${h.name}'s own fields`,
    );
  }
  const updates = await get(t, '/api/v1/updates?limit=1000');
  assert.equal(updates.total, expected.perUpdate.size, when);
  const totals: Counts = Object.fromEntries(WAPT_STATES.map((s) => [s, 0]));
  for (const u of updates.updates) {
    const { counts, wsusCounts, decisions } = u;
    assert.deepEqual(
      { counts, wsusCounts, decisions },
      expected.perUpdate.get(u.updateId),
      `${when}: update ${u.updateId}`,
    );
    for (const s of WAPT_STATES) totals[s]! += counts[s];
  }
  // Sorted and filtered on the server: the hosts missing the most come first.
  const byMissing = await get(t, '/api/v1/hosts?sort=MISSING&order=desc&limit=3');
  const most = Math.max(...[...expected.perHost.values()].map((c) => c.counts.MISSING!));
  assert.equal(byMissing.hosts[0].counts.MISSING, most, when);
  const overview = await get(t, '/api/v1/overview');
  const all: Counts = Object.fromEntries(WSUS_STATES.map((s) => [s, 0]));
  for (const [name, c] of expected.perHost)
    if (!expected.hosts.find((h) => h.name === name)!.revoked_at)
      for (const s of WSUS_STATES) all[s]! += c.wsusCounts[s]!;
  assert.deepEqual(overview.all, all, `${when}: overview`);
  for (const u of updates.updates.slice(0, 3)) {
    const page = await get(t, `/api/v1/updates/${u.updateId}`);
    const e = expected.perUpdate.get(u.updateId)!;
    assert.deepEqual(
      { counts: page.counts, decisions: page.decisions },
      { counts: e.wsusCounts, decisions: e.decisions },
    );
  }
  for (const name of ['host00003', 'host00010', 'web01']) {
    const one = await get(t, `/api/v1/hosts/${name}/updates`);
    assert.deepEqual(
      one.updates.map(
        (u: { updateId: string; state: string | null; decision: string; deferredUntil: string | null }) => ({
          updateId: u.updateId,
          state: u.state,
          decision: u.decision,
          until: u.deferredUntil,
        }),
      ),
      expected.hostUpdates.get(name),
      `${when}: ${name}'s updates`,
    );
  }
  return totals;
}

forEachStore('console grids equal the whole-fleet computation', (kind) => {
  let t: TestApp;
  let web01: string;
  let web02: string;
  const admin = (method: 'POST' | 'PUT', url: string, payload: Record<string, unknown>) =>
    t.app.inject({ method, url, headers: { authorization: t.bearer.admin }, payload }).then((r) => {
      assert.ok(r.statusCode < 300, `${method} ${url}: ${r.body}`);
      return r.body ? r.json() : null;
    });
  const report = (auth: string, seq: number, updates: ReportedUpdate[]) =>
    sendReport(t, auth, fullReport(seq, t.clock.now(), updates));
  const reported = (i: number, applicability: 'needed' | 'installed', kb = String(5_000_000 + i)) =>
    reportedUpdate(i < 0 ? UNKNOWN : seedUpdateId(i), kb, applicability, { revisionNumber: 200 });

  before(async () => {
    t = await testApp(kind);
    // A catalog of 40 updates released over the last months, 60 hosts in two rings.
    await seedFleet(t.store.db, { hosts: 60, updates: 40, minPerHost: 5, maxPerHost: 25, now: t.clock.now() });
    await admin('PUT', '/api/v1/rings/pilot', { position: 0, defaultAllow: true });
    await admin('PUT', '/api/v1/rings/broad', {
      position: 1,
      defaultAllow: false,
      installDelayDays: 30,
      promotion: { minHosts: 1, minSuccessPercent: 50, soakHours: 48, maxFailurePercent: 40 },
    });
    await admin('POST', '/api/v1/rules', {
      action: 'allow',
      classifications: ['Security Updates', 'Critical Updates'],
    });
    // Scoped to host names: those hosts are decided apart from the rest of their ring.
    await admin('POST', '/api/v1/rules', { action: 'forbid', kbs: ['5000002'], hosts: ['host0001?'] });
    const token = await enrollToken(t, { ring: 'pilot' });
    const r = await enrollRequest(t, token, 'web01');
    assert.equal(r.statusCode, 201, r.body);
    web01 = `Bearer ${r.json().credential}`;
    const broad = await enrollRequest(t, await enrollToken(t, { ring: 'broad' }), 'web02');
    assert.equal(broad.statusCode, 201, broad.body);
    web02 = `Bearer ${broad.json().credential}`;
  });
  after(() => t.close());

  test('after seeding, reports, a rule change, a clock move and a revocation', async () => {
    const seeded = await assertGridsEqualWholeFleet(t, 'seeded');
    // An agent reports (new updates, one the catalog does not know), then reports again.
    await report(web01, 1, [reported(1, 'needed'), reported(2, 'needed'), reported(-1, 'needed', '5999999')]);
    await assertGridsEqualWholeFleet(t, 'after a first report');
    await report(web01, 2, [reported(1, 'installed'), reported(3, 'needed'), reported(-1, 'needed', '5999999')]);
    const reportedTwice = await assertGridsEqualWholeFleet(t, 'after a second report');
    assert.notDeepEqual(reportedTwice, seeded, 'the reports changed what the grids show');
    // A host of the last ring reports: no promotion evidence changes, only its own counts.
    await report(web02, 1, [reported(4, 'needed'), reported(5, 'installed'), reported(1, 'needed')]);
    await assertGridsEqualWholeFleet(t, 'after a broad host reported');
    await report(web02, 2, [reported(4, 'needed')]);
    await assertGridsEqualWholeFleet(t, 'after a broad host reported less');

    await admin('POST', '/api/v1/rules', { action: 'forbid', classifications: ['Security Updates'] });
    const forbidden = await assertGridsEqualWholeFleet(t, 'after a forbid rule');
    assert.ok(forbidden.DISCARDED! > reportedTwice.DISCARDED!, 'the rule discarded more updates');

    t.clock.advance(40 * DAY_MS);
    const later = await assertGridsEqualWholeFleet(t, 'after the clock moved 40 days');
    assert.notDeepEqual(later, forbidden, 'install delays and promotion soaks ended');

    // A check-in that reports nothing: only web01's last-seen time moves.
    const checkin = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: web01 },
      payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: 'test' },
    });
    assert.equal(checkin.statusCode, 200, checkin.body);
    await assertGridsEqualWholeFleet(t, 'after a check-in');

    await admin('POST', '/api/v1/hosts/host00005/revoke', {});
    await assertGridsEqualWholeFleet(t, 'after a revocation');
  });
});
