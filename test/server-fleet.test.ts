/**
 * The fleet through the API, as an administrator and an agent see it, on SQLite and PostgreSQL:
 * an agent enrolls with a token made by the API, reports a scan; the host and its updates show
 * with states derived by the policy; a forbid rule makes the needed update DISCARDED; an action
 * reaches the agent's held check-in at once, its progress is visible in GET /api/v1/actions/{id}
 * and on the event stream (real socket); a resent report changes nothing; revocation cuts the agent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { enrollRequest, enrollToken, forEachStore, testApp, type TestApp } from './support/server-harness.ts';
import { AGENT_PROTOCOL_VERSION, type ScanReport } from '../src/domain/agent-protocol.ts';
import { appDeps } from '../src/server/app.ts';
import { sqlGatewayStore } from '../src/server/fleet/gateway-store.ts';
import { fullReport, reportedUpdate, sendReport } from './support/reports.ts';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const U3 = '33333333-3333-4333-8333-333333333333';

forEachStore('the fleet through the API', (kind) => {
  let t: TestApp;
  let agent = '';
  const at = () => t.clock.now().toISOString();
  const report = (seq: number): ScanReport =>
    fullReport(
      seq,
      at(),
      [
        reportedUpdate(U1, '5044444', 'needed', { revisionNumber: 200 }),
        reportedUpdate(U2, '5033333', 'installed', { revisionNumber: 100, downloaded: true }),
      ],
      { source: 'offline' },
    );

  before(async () => {
    t = await testApp(kind);
    const ring = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/rings/pilot',
      headers: { authorization: t.bearer.admin },
      payload: { defaultAllow: true },
    });
    assert.equal(ring.statusCode, 200, ring.body);
    const token = await enrollToken(t, { singleUse: true });
    const enroll = await enrollRequest(t, token, 'WEB01', '0.1.0');
    assert.equal(enroll.statusCode, 201, enroll.body);
    agent = `Bearer ${enroll.json().credential}`;
    const again = await enrollRequest(t, token, 'web02', '0.1.0');
    assert.equal(again.json().error.code, 'ENROLL_TOKEN_USED_UP', 'a single-use token enrolls one host');
  });
  after(() => t.close());

  test('a reported scan shows as the host’s updates with derived states; a resent report changes nothing', async () => {
    const sent = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/reports',
      headers: { authorization: agent },
      payload: report(1),
    });
    assert.deepEqual(sent.json(), { ackedSeq: 1, status: 'applied' });
    const resent = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/reports',
      headers: { authorization: agent },
      payload: report(1),
    });
    assert.equal(resent.json().status, 'duplicate');

    const hosts = (
      await t.app.inject({ method: 'GET', url: '/api/v1/hosts', headers: { authorization: t.bearer.viewer } })
    ).json();
    assert.equal(hosts.total, 1);
    assert.equal(hosts.hosts[0].name, 'WEB01');
    assert.equal(hosts.hosts[0].ring, 'pilot');
    assert.equal(hosts.hosts[0].lastScanAt, at());
    assert.deepEqual(hosts.hosts[0].counts, { OK: 1, MISSING: 1, PENDING: 0, DISCARDED: 0 });

    const updates = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/hosts/web01/updates',
        headers: { authorization: t.bearer.viewer },
      })
    ).json().updates;
    const u1 = updates.find((u: { updateId: string }) => u.updateId === U1);
    assert.deepEqual(
      { state: u1.state, wsus: u1.wsusState, decision: u1.decision, kb: u1.kb },
      { state: 'MISSING', wsus: 'needed', decision: 'allowed', kb: '5044444' },
    );
  });

  test('a forbid rule makes the needed update DISCARDED; invalid rules are refused and change nothing', async () => {
    const bad = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rules',
      headers: { authorization: t.bearer.admin },
      payload: { action: 'forbid', kbs: ['KB12x'] },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'RULE_BAD_KB');
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/v1/rules', headers: { authorization: t.bearer.viewer } })).json()
        .rules.length,
      0,
    );

    const preview = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rules/preview',
      headers: { authorization: t.bearer.viewer },
      payload: { add: [{ action: 'forbid', kbs: ['KB5044444'] }] },
    });
    assert.equal(preview.statusCode, 200, preview.body);

    const rule = await t.app.inject({
      method: 'POST',
      url: '/api/v1/rules',
      headers: { authorization: t.bearer.admin },
      payload: { action: 'forbid', kbs: ['KB5044444'] },
    });
    assert.equal(rule.statusCode, 201, rule.body);
    const u1 = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/hosts/web01/updates',
        headers: { authorization: t.bearer.viewer },
      })
    )
      .json()
      .updates.find((u: { updateId: string }) => u.updateId === U1);
    assert.equal(u1.state, 'DISCARDED');
    assert.equal(u1.decision, 'forbidden');
    const fleetView = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/updates?state=DISCARDED',
        headers: { authorization: t.bearer.viewer },
      })
    ).json();
    assert.deepEqual(
      fleetView.updates.map((u: { updateId: string }) => u.updateId),
      [U1],
    );
    // The agent's own policy no longer allows it.
    const checkin = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/agent/checkin',
        headers: { authorization: agent },
        payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: '0.1.0' },
      })
    ).json();
    assert.ok(!checkin.policy.allowedUpdateIds.includes(U1), "the forbidden update is not in the agent's allowed list");
    await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/rules/${rule.json().id}`,
      headers: { authorization: t.bearer.admin },
    });
  });

  test('an action reaches the held check-in at once; its progress shows in the API and on the event stream', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    const stream = await fetch(`${base}/api/v1/events`, { headers: { authorization: t.bearer.viewer } });
    assert.equal(stream.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = stream.body!.getReader();
    let seen = '';
    const waitFor = async (text: string, ms = 5_000) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`timed out after ${ms} ms waiting for ${text} on the event stream; seen: ${seen}`)),
            ms,
          )),
      );
      try {
        while (!seen.includes(text)) {
          const { value, done } = await Promise.race([reader.read(), late]);
          if (done) throw new Error(`stream ended before ${text}`);
          seen += new TextDecoder().decode(value);
        }
      } finally {
        clearTimeout(timer);
      }
    };

    const held = fetch(`${base}/api/v1/agent/checkin`, {
      method: 'POST',
      headers: { authorization: agent, 'content-type': 'application/json' },
      body: JSON.stringify({ protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 30, agentVersion: '0.1.0' }),
    });
    // The check-in is held: wait until the app's gateway counts it before creating the action.
    const hostId = (await t.store.db.selectFrom('hosts').select('id').executeTakeFirstOrThrow()).id;
    const gateway = appDeps(t.app).agents!;
    const deadline = Date.now() + 5_000;
    while (!gateway.isConnected(hostId)) {
      if (Date.now() > deadline) throw new Error("timed out after 5 s waiting for the agent's check-in to be held");
      await new Promise((r) => setTimeout(r, 5));
    }
    const created = await fetch(`${base}/api/v1/actions`, {
      method: 'POST',
      headers: { authorization: t.bearer.operator, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'install', hosts: ['web01'], updateIds: [U1.toUpperCase()] }),
    });
    assert.equal(created.status, 202);
    const { id } = (await created.json()) as { id: string };
    const answer = (await (await held).json()) as { actions: { id: string; action: string }[] };
    assert.deepEqual(
      answer.actions.map((a) => [a.id, a.action]),
      [[id, 'install']],
    );
    // The woken answer hands the action out exactly as any later check-in reads it from the store.
    const again = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: agent },
      payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: '0.1.0' },
    });
    assert.deepEqual(answer.actions, again.json().actions);
    assert.deepEqual(again.json().actions[0].updateIds, [U1]);
    await waitFor(`"action":"${id}","type":"install","hosts":1,"kind":"action.created"`);

    const progress = await t.app.inject({
      method: 'POST',
      url: `/api/v1/agent/actions/${id}/progress`,
      headers: { authorization: agent },
      payload: { protocol: AGENT_PROTOCOL_VERSION, state: 'succeeded', at: at(), percent: 100 },
    });
    assert.equal(progress.statusCode, 204, progress.body);
    await waitFor(
      `"action":"${id}","host":"WEB01","state":"succeeded","phase":null,"percent":100,"kind":"action.progress"`,
    );
    const detail = (
      await t.app.inject({ method: 'GET', url: `/api/v1/actions/${id}`, headers: { authorization: t.bearer.viewer } })
    ).json();
    assert.equal(detail.state, 'done');
    assert.deepEqual(
      detail.hosts.map((h: { host: string; state: string }) => [h.host, h.state]),
      [['WEB01', 'succeeded']],
    );
    await reader.cancel();
  });

  test('a full report replaces what the server holds: an update no longer reported is gone, an unchanged one stays', async () => {
    const full = { ...report(2), updates: report(2).updates.filter((u) => u.updateId === U1) };
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/v1/agent/reports',
          headers: { authorization: agent },
          payload: full,
        })
      ).json().status,
      'applied',
    );
    const updates = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/hosts/web01/updates',
        headers: { authorization: t.bearer.viewer },
      })
    ).json().updates;
    assert.deepEqual(
      updates.map((u: { updateId: string; state: string }) => [u.updateId, u.state]),
      [[U1, 'MISSING']],
    );
  });

  test('a full report repeated after a delta restores what it says; the reboot flag alone changes the states', async () => {
    const states = async (): Promise<[string, string][]> =>
      (
        await t.app.inject({
          method: 'GET',
          url: '/api/v1/hosts/web01/updates',
          headers: { authorization: t.bearer.viewer },
        })
      )
        .json()
        .updates.map((u: { updateId: string; wsusState: string }) => [u.updateId, u.wsusState]);
    const installedNow = {
      phase: 'install' as const,
      resultCode: 'succeeded' as const,
      hresult: null,
      attempts: 1,
      at: at(),
    };
    const updates = [
      reportedUpdate(U1, '5044444', 'needed', { revisionNumber: 200, lastAttempt: installedNow }),
      reportedUpdate(U2, '5033333', 'installed', { revisionNumber: 100, downloaded: true }),
    ];
    await sendReport(t, agent, fullReport(10, at(), updates, { rebootPending: true }));
    const held: [string, string][] = [
      [U1, 'installed-pending-reboot'],
      [U2, 'installed'],
    ];
    assert.deepEqual(await states(), held);
    // A delta changes U1; the same full report as seq 10 then has to put it back.
    await sendReport(t, agent, {
      ...fullReport(11, at(), [reportedUpdate(U1, '5044444', 'needed', { revisionNumber: 200 })]),
      baseSeq: 10,
    });
    assert.deepEqual(await states(), [
      [U1, 'needed'],
      [U2, 'installed'],
    ]);
    await sendReport(t, agent, fullReport(12, at(), updates, { rebootPending: true }));
    assert.deepEqual(await states(), held, 'the full report after the delta is applied, not taken as already held');
    await sendReport(t, agent, fullReport(13, at(), updates, { rebootPending: true }));
    assert.deepEqual(await states(), held, 'the same full report again changes nothing');
    // Rebooted: the same updates, no reboot pending.
    await sendReport(t, agent, fullReport(14, at(), updates, { rebootPending: false }));
    assert.deepEqual(await states(), [
      [U1, 'needed'],
      [U2, 'installed'],
    ]);
  });

  test('the store gives back each update exactly as the agent reported it, however much the columns hold', async () => {
    const updates = [
      // What the columns say alone (no attempt, one KB) …
      reportedUpdate(U1, '5044444', 'needed', { revisionNumber: 200, downloaded: true }),
      // … and what they do not: two KBs, downloaded before it was installed, a failed attempt.
      reportedUpdate(U2, '5033333', 'installed', {
        revisionNumber: 100,
        downloaded: true,
        kbs: ['5033333', '5033334'],
      }),
      reportedUpdate(U3, '5055555', 'needed', {
        revisionNumber: 7,
        lastAttempt: { phase: 'install', resultCode: 'failed', hresult: '0x80070005', attempts: 2, at: at() },
      }),
    ];
    await sendReport(t, agent, fullReport(20, at(), updates));
    const hostId = (
      await t.store.db.selectFrom('hosts').select('id').where('key', '=', 'web01').executeTakeFirstOrThrow()
    ).id;
    const store = sqlGatewayStore({ db: t.store.db, dialect: t.store.dialect, notify: () => undefined });
    const inventory = await store.inventory(hostId);
    assert.equal(inventory.ackedSeq, 20);
    assert.deepEqual(
      [...inventory.updates.values()].sort((a, b) => a.updateId.localeCompare(b.updateId)),
      updates.map((u) => ({ ...u, updateId: u.updateId.toLowerCase() })),
    );
  });

  test("check-ins keep the host's last-seen time to 10 s; a new boot id is written at once", async () => {
    const checkin = async (bootId: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/agent/checkin',
        headers: { authorization: agent },
        payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: '0.1.0', bootId },
      });
      assert.equal(res.statusCode, 200, res.body);
      const host = await t.store.db
        .selectFrom('hosts')
        .select(['last_seen_at', 'online_until', 'boot_id'])
        .where('key', '=', 'web01')
        .executeTakeFirstOrThrow();
      return [host.last_seen_at, host.boot_id];
    };
    t.clock.advance(60_000);
    const first = at();
    assert.deepEqual(await checkin('boot-1'), [first, 'boot-1']);
    // An action's answer and the re-armed check-in a moment later: one write.
    t.clock.advance(9_000);
    assert.deepEqual(await checkin('boot-1'), [first, 'boot-1']);
    t.clock.advance(1_000);
    assert.deepEqual(await checkin('boot-1'), [at(), 'boot-1']);
    // Rebooted: the server sees it at once, however soon.
    t.clock.advance(1_000);
    assert.deepEqual(await checkin('boot-2'), [at(), 'boot-2']);
    const hosts = await t.app.inject({ url: '/api/v1/hosts', headers: { authorization: t.bearer.viewer } });
    const web01 = hosts.json().hosts.find((h: { name: string }) => h.name === 'WEB01');
    assert.equal(web01.online, true);
    assert.equal(web01.lastSeenAt, at());
  });

  test('revoking the host cuts its credential at once, and it cannot re-enroll', async () => {
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/v1/hosts/web01/revoke',
          headers: { authorization: t.bearer.admin },
        })
      ).statusCode,
      204,
    );
    const refused = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/reports',
      headers: { authorization: agent },
      payload: report(2),
    });
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().error.code, 'AGENT_HOST_REVOKED');
    const reenroll = await enrollRequest(t, await enrollToken(t, { singleUse: true }), 'web01', '0.1.0');
    assert.equal(
      reenroll.json().error.code,
      'ENROLL_HOST_REVOKED',
      'a revoked host cannot enroll again under its name',
    );
    const audit = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/audit?action=host.',
        headers: { authorization: t.bearer.admin },
      })
    )
      .json()
      .entries.map((e: { action: string }) => e.action);
    assert.deepEqual(audit, ['host.revoke', 'host.enroll']);
  });
});
