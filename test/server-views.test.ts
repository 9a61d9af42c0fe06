// The console's read views (overview, facets, one update, one host's history, the promotion
// board), fed by real agent reports through the gateway, on SQLite and PostgreSQL: what the
// console shows must add up to what the agents said.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { enrollRequest, enrollToken, forEachStore, testApp, type TestApp } from './support/server-harness.ts';
import type { ReportedUpdate } from '../src/domain/agent-protocol.ts';
import { fullReport, reportedUpdate, sendReport } from './support/reports.ts';

const CU = '11111111-1111-4111-8111-111111111111';
const NET = '22222222-2222-4222-8222-222222222222';
const T0 = '2026-03-02T09:00:00.000Z';

async function enroll(t: TestApp, token: string, hostName: string): Promise<string> {
  const r = await enrollRequest(t, token, hostName);
  assert.equal(r.statusCode, 201, r.body);
  return `Bearer ${r.json().credential}`;
}

function report(t: TestApp, auth: string, updates: ReportedUpdate[], rebootPending = false): Promise<void> {
  return sendReport(t, auth, fullReport(1, T0, updates, { rebootPending }));
}

const needed = (updateId: string, kb: string) => reportedUpdate(updateId, kb, 'needed');
const failed = (updateId: string, kb: string, hresult: string) =>
  reportedUpdate(updateId, kb, 'needed', {
    lastAttempt: { phase: 'install', resultCode: 'failed', hresult, attempts: 2, at: T0 },
  });

forEachStore('console views', (kind) => {
  let t: TestApp;
  before(async () => {
    t = await testApp(kind);
    const token = await enrollToken(t);
    const web01 = await enroll(t, token, 'web01');
    const web02 = await enroll(t, token, 'web02');
    const sql01 = await enroll(t, token, 'sql01');
    await report(t, web01, [needed(CU, '5044445'), failed(NET, '5044033', '0x80070643')]);
    await report(t, web02, [needed(CU, '5044445'), failed(NET, '5044033', '0x80070643')], true);
    await report(t, sql01, [reportedUpdate(CU, '5044445', 'installed')]);
  });
  after(() => t.close());

  test('the overview counts what the agents reported, per state, and names the failures with their meaning', async () => {
    const r = await t.app.inject({ url: '/api/v1/overview', headers: { authorization: t.bearer.viewer } });
    assert.equal(r.statusCode, 200, r.body);
    const o = r.json();
    assert.equal(o.hosts, 3);
    assert.equal(o.hostsRebootPending, 1);
    assert.equal(o.all.needed, 2);
    assert.equal(o.all.installed, 1);
    assert.equal(o.all.failed, 2);
    assert.deepEqual(
      o.rings.map((x: { ring: string; hosts: number }) => [x.ring, x.hosts]),
      [['pilot', 3]],
    );
    assert.equal(o.latestFailures.length, 2);
    assert.equal(o.latestFailures[0].hresult, '0x80070643');
    assert.equal(o.latestFailures[0].hresultName, 'ERROR_INSTALL_FAILURE');
    assert.match(o.latestFailures[0].hresultMeaning, /installation/i);
  });

  test('one update: its hosts by state and its failures grouped by HRESULT', async () => {
    const r = await t.app.inject({ url: `/api/v1/updates/${NET}`, headers: { authorization: t.bearer.viewer } });
    assert.equal(r.statusCode, 200, r.body);
    const u = r.json();
    assert.equal(u.kb, '5044033');
    assert.deepEqual(
      u.hosts.map((h: { name: string; wsusState: string }) => [h.name, h.wsusState]),
      [
        ['web01', 'failed'],
        ['web02', 'failed'],
      ],
    );
    assert.deepEqual(
      u.failures.map((f: { hresult: string; hosts: string[] }) => [f.hresult, f.hosts]),
      [['0x80070643', ['web01', 'web02']]],
    );
    const missing = await t.app.inject({
      url: '/api/v1/updates/99999999-9999-4999-8999-999999999999',
      headers: { authorization: t.bearer.viewer },
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error.code, 'UPDATE_NOT_FOUND');
  });

  test("a host's history lists its last results with HRESULT names; an unknown host is 404", async () => {
    const r = await t.app.inject({ url: '/api/v1/hosts/WEB01/history', headers: { authorization: t.bearer.viewer } });
    assert.equal(r.statusCode, 200, r.body);
    const h = r.json();
    assert.deepEqual(
      h.results.map((x: { kb: string; hresult: string; hresultName: string; attempts: number }) => [
        x.kb,
        x.hresult,
        x.hresultName,
        x.attempts,
      ]),
      [['5044033', '0x80070643', 'ERROR_INSTALL_FAILURE', 2]],
    );
    const unknown = await t.app.inject({
      url: '/api/v1/hosts/nope/history',
      headers: { authorization: t.bearer.viewer },
    });
    assert.equal(unknown.statusCode, 404);
  });

  test('the facets list severities of the reported updates, and the views refuse anonymous callers', async () => {
    const r = await t.app.inject({ url: '/api/v1/updates/facets', headers: { authorization: t.bearer.viewer } });
    assert.equal(r.statusCode, 200, r.body);
    assert.ok(Array.isArray(r.json().severities));
    for (const url of [
      '/api/v1/overview',
      '/api/v1/updates/facets',
      `/api/v1/updates/${CU}`,
      '/api/v1/hosts/web01/history',
      '/api/v1/promotions',
    ]) {
      assert.equal((await t.app.inject({ url })).statusCode, 401, url);
    }
  });
});
