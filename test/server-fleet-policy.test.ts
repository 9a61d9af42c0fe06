/**
 * The policy an agent receives at check-in (allowedUpdateIds), on SQLite and PostgreSQL. It is
 * decided per host and kept between check-ins (src/server/fleet/host-policy.ts), so these check
 * that every input still reaches the agent: its own new report, the pilot ring's installs opening
 * the promotion gate after the soak (and a pilot failure closing it again), and a rule forbidding an update (at once after an action).
 * A check-in an action wakes carries the policy decided while it was held, maybe on the host's
 * previous report (the action is not held up deciding 10,000 hosts again); the check-in after it
 * is decided on the last.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { enrollRequest, enrollToken, forEachStore, testApp, type TestApp } from './support/server-harness.ts';
import { AGENT_PROTOCOL_VERSION, type ReportedUpdate } from '../src/domain/agent-protocol.ts';
import { appDeps } from '../src/server/app.ts';
import { HOST_POLICY_TTL_MS } from '../src/server/fleet/host-policy.ts';
import { fullReport, reportedUpdate, sendReport } from './support/reports.ts';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const HOUR_MS = 3_600_000;

forEachStore('the policy agents receive', (kind) => {
  let t: TestApp;
  const agents = new Map<string, { credential: string; seq: number }>();

  const put = async (url: string, payload: object): Promise<void> => {
    const res = await t.app.inject({ method: 'PUT', url, headers: { authorization: t.bearer.admin }, payload });
    assert.equal(res.statusCode, 200, res.body);
  };
  const enroll = async (ring: string, name: string): Promise<void> => {
    const res = await enrollRequest(t, await enrollToken(t, { ring }), name);
    assert.equal(res.statusCode, 201, res.body);
    agents.set(name, { credential: `Bearer ${res.json().credential}`, seq: 0 });
  };
  const update = (updateId: string, applicability: 'needed' | 'installed'): ReportedUpdate =>
    reportedUpdate(updateId, updateId === U1 ? '5011111' : '5022222', applicability);
  const report = async (name: string, updates: ReportedUpdate[]): Promise<void> => {
    const a = agents.get(name)!;
    a.seq++;
    await sendReport(t, a.credential, fullReport(a.seq, t.clock.now(), updates, { source: 'offline' }));
  };
  /** Adds a rule (as an admin) and returns a function that deletes it again. */
  const addRule = async (payload: object): Promise<() => Promise<void>> => {
    const rule = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rules',
      headers: { authorization: t.bearer.admin },
      payload,
    });
    assert.equal(rule.statusCode, 201, rule.body);
    return async () => {
      const del = await t.app.inject({
        method: 'DELETE',
        url: `/api/v1/rules/${rule.json().id}`,
        headers: { authorization: t.bearer.admin },
      });
      assert.equal(del.statusCode, 204, del.body);
    };
  };
  const allowed = async (name: string): Promise<string[]> => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: agents.get(name)!.credential },
      payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: 'test' },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().policy.allowedUpdateIds;
  };

  before(async () => {
    t = await testApp(kind);
    await put('/api/v1/rings/pilot', { position: 0, defaultAllow: true });
    await put('/api/v1/rings/broad', {
      position: 1,
      defaultAllow: true,
      promotion: { minHosts: 1, minSuccessPercent: 100, soakHours: 1, maxFailurePercent: 0 },
    });
    await enroll('pilot', 'pilot01');
    await enroll('broad', 'broad01');
  });
  after(() => t.close());

  test('a new report changes the allowed updates at the next check-in', async () => {
    assert.deepEqual(await allowed('pilot01'), [], 'nothing reported yet');
    await report('pilot01', [update(U1, 'needed')]);
    assert.deepEqual(await allowed('pilot01'), [U1]);
    await report('pilot01', [update(U1, 'needed'), update(U2, 'needed')]);
    assert.deepEqual(await allowed('pilot01'), [U1, U2], 'the second report is seen, not the cached first');
  });

  test('the broad ring gets an update only after the pilot installed it and the soak passed', async () => {
    await report('broad01', [update(U1, 'needed')]);
    assert.deepEqual(await allowed('broad01'), [], 'promotion pending: no pilot host installed it');
    await report('pilot01', [update(U1, 'installed'), update(U2, 'needed')]);
    t.clock.advance(HOST_POLICY_TTL_MS);
    assert.deepEqual(await allowed('broad01'), [], 'installed in the pilot, soak not over');
    t.clock.advance(HOUR_MS);
    assert.deepEqual(await allowed('broad01'), [U1], 'the soak is over: allowed in broad');
    // A pilot host whose install fails halts the promotion: broad loses it, though broad01 reported nothing new.
    await enroll('pilot', 'pilot02');
    await report('pilot02', [
      {
        ...update(U1, 'needed'),
        lastAttempt: {
          phase: 'install',
          resultCode: 'failed',
          hresult: '0x80070002',
          attempts: 1,
          at: t.clock.now().toISOString(),
        },
      },
    ]);
    t.clock.advance(HOST_POLICY_TTL_MS);
    assert.deepEqual(await allowed('broad01'), [], 'halted by the failure in the pilot');
  });

  test('a check-in an action wakes is answered without deciding a report sent meanwhile; the next check-in has it', async () => {
    await enroll('pilot', 'pilot09');
    await report('pilot09', [update(U1, 'needed')]);
    assert.deepEqual(await allowed('pilot09'), [U1]);
    const held = t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: agents.get('pilot09')!.credential },
      payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 30, agentVersion: 'test' },
    });
    const hostId = (
      await t.store.db.selectFrom('hosts').select('id').where('name', '=', 'pilot09').executeTakeFirstOrThrow()
    ).id;
    const gateway = appDeps(t.app).agents!;
    const deadline = Date.now() + 5_000;
    while (!gateway.isConnected(hostId)) {
      if (Date.now() > deadline) throw new Error("timed out after 5 s waiting for pilot09's check-in to be held");
      await new Promise((r) => setTimeout(r, 5));
    }
    // While the check-in is held, the host reports a second update.
    await report('pilot09', [update(U1, 'needed'), update(U2, 'needed')]);
    const action = await t.app.inject({
      method: 'POST',
      url: '/api/v1/actions',
      headers: { authorization: t.bearer.admin },
      payload: { action: 'scan', hosts: ['pilot09'] },
    });
    assert.equal(action.statusCode, 202, action.body);
    const answer = (await held).json<{ actions: { id: string }[]; policy: { allowedUpdateIds: string[] } }>();
    assert.deepEqual(
      answer.actions.map((a) => a.id),
      [action.json().id],
    );
    // Decided while the check-in was held: on the first report, or on the second if it was applied
    // before that decision read the host's rows; either is a policy the rules give this host.
    assert.ok(
      [JSON.stringify([U1]), JSON.stringify([U1, U2])].includes(JSON.stringify(answer.policy.allowedUpdateIds)),
      `the woken answer carries a policy decided under the current rules: ${JSON.stringify(answer.policy)}`,
    );
    assert.deepEqual(await allowed('pilot09'), [U1, U2], 'the next check-in is decided on the second report');
  });

  test('a forbid rule reaches the agents within the cache time, an action at once', async () => {
    const removeRule = await addRule({ action: 'forbid', updateIds: [U2] });
    const action = await t.app.inject({
      method: 'POST',
      url: '/api/v1/actions',
      headers: { authorization: t.bearer.admin },
      payload: { action: 'scan', hosts: ['pilot01'] },
    });
    assert.equal(action.statusCode, 202, action.body);
    assert.deepEqual(await allowed('pilot01'), [], 'U2 is forbidden right after the action that follows the rule');
    await removeRule();
    t.clock.advance(HOST_POLICY_TTL_MS);
    assert.deepEqual(await allowed('pilot01'), [U2], 'the rule is gone after the cache time');
  });

  test('a KB rule decides an update the catalog does not know by the KB the host reported', async () => {
    // The test server has no catalog: U1 and U2 are known only from pilot01's report (KB5011111, KB5022222).
    await report('pilot01', [update(U1, 'needed'), update(U2, 'needed')]);
    const removeRule = await addRule({ action: 'forbid', kbs: ['KB5022222'] });
    t.clock.advance(HOST_POLICY_TTL_MS);
    assert.deepEqual(await allowed('pilot01'), [U1]);
    await removeRule();
    t.clock.advance(HOST_POLICY_TTL_MS);
    assert.deepEqual(await allowed('pilot01'), [U1, U2]);
  });
});
