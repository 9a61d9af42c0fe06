/**
 * No race between a report and the decision on it (issue 7, install chains): GET
 * /api/v1/agent/policy — what an install action asks between its passes — answers the decision on
 * the report the server applied last, whatever a check-in computed a moment before. An agent that
 * reports the cumulative update needed right after its servicing stack update went in gets the CU
 * allowed at once (a KB rule written before any host reported it covers it), on SQLite and PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { enrollRequest, enrollToken, forEachStore, testApp, type TestApp } from './support/server-harness.ts';
import { AGENT_PROTOCOL_VERSION, type ReportedUpdate } from '../src/domain/agent-protocol.ts';
import { fullReport, reportedUpdate as update, sendReport } from './support/reports.ts';

const SSU = '5a000000-0000-4000-8000-000000000001';
const CU = '5a000000-0000-4000-8000-000000000002';
const OTHER = '5a000000-0000-4000-8000-000000000003';

forEachStore('the policy after a report', (kind) => {
  let t: TestApp;
  let agent = '';
  const send = (seq: number, updates: ReportedUpdate[]) =>
    sendReport(t, agent, fullReport(seq, t.clock.now(), updates));
  const checkinAllowed = async (): Promise<string[]> => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: agent },
      payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: 'test' },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().policy.allowedUpdateIds;
  };

  before(async () => {
    t = await testApp(kind);
    const admin = { authorization: t.bearer.admin };
    const ring = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/rings/pilot',
      headers: admin,
      payload: { defaultAllow: false },
    });
    assert.equal(ring.statusCode, 200, ring.body);
    // Written before any host reported the CU: its KB is what the rule names.
    for (const kbs of [['5044444'], ['5044445']]) {
      const rule = await t.app.inject({
        method: 'POST',
        url: '/api/v1/rules',
        headers: admin,
        payload: { action: 'allow', kbs },
      });
      assert.equal(rule.statusCode, 201, rule.body);
    }
    const enroll = await enrollRequest(t, await enrollToken(t), 'chain01');
    assert.equal(enroll.statusCode, 201, enroll.body);
    agent = `Bearer ${enroll.json().credential}`;
  });
  after(() => t.close());

  test('the decision on the report just sent: the CU that appeared after the SSU is allowed at once', async () => {
    await send(1, [update(SSU, '5044444', 'needed'), update(OTHER, '5000001', 'needed')]);
    // A check-in computes the fleet view now (the clock does not move in this test).
    assert.deepEqual(await checkinAllowed(), [SSU]);

    await send(2, [
      update(SSU, '5044444', 'installed'),
      update(CU, '5044445', 'needed'),
      update(OTHER, '5000001', 'needed'),
    ]);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/agent/policy', headers: { authorization: agent } });
    assert.equal(res.statusCode, 200, res.body);
    const answer = res.json() as { ackedReportSeq: number; policy: { allowedUpdateIds: string[]; ring: string } };
    assert.equal(answer.ackedReportSeq, 2, 'decided on report 2');
    assert.deepEqual(
      answer.policy.allowedUpdateIds,
      [CU],
      'the CU is allowed; the installed SSU and the unallowed update are not',
    );
    assert.equal(answer.policy.ring, 'pilot');

    // The agent may fetch the CU's files from the content cache now (no "not allowed" refusal).
    const content = await t.app.inject({
      method: 'GET',
      url: `/api/v1/agent/updates/${CU}/content`,
      headers: { authorization: agent },
    });
    assert.notEqual(content.json().error?.code, 'AGENT_CONTENT_NOT_ALLOWED', content.body);
  });

  test('the route needs the agent credential', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/agent/policy' });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error.code, 'AGENT_UNAUTHENTICATED');
  });
});
