/**
 * The agent gateway on its own (a bare Fastify app with the in-memory store): enrollment and its
 * refusals, one host's credential confined to its own host, idempotent and delta reports, bad
 * reports refused with nothing changed, and a held check-in answered at once by wake().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import {
  AGENT_PROTOCOL_VERSION,
  CheckinResponse,
  encodeEnrollToken,
  tokenSecretHash,
  type AgentPolicy,
  type ReportedUpdate,
  type ScanReport,
} from '../../domain/agent-protocol.ts';
import { createAgentGateway, type AgentGateway } from './gateway.ts';
import { MemoryGatewayStore } from './store.ts';

const T0 = new Date('2026-11-11T02:00:00Z');
const SECRET = 'abcdefghijklmnop0123';
const POLICY: AgentPolicy = {
  ring: 'pilot',
  scanIntervalSeconds: 3600,
  scanSource: 'offline',
  windows: [],
  reboot: 'if-required',
  installAtShutdown: false,
  directDownload: false,
  allowedUpdateIds: [],
};

interface Fixture {
  app: FastifyInstance;
  store: MemoryGatewayStore;
  gateway: AgentGateway;
  clock: { now: Date };
  /** What policyFor answers (replace it to change the host's policy). */
  policy: { current: AgentPolicy };
}

async function fixture(): Promise<Fixture> {
  const store = new MemoryGatewayStore();
  const clock = { now: T0 };
  const policy = { current: POLICY };
  store.addEnrollToken({
    hash: tokenSecretHash(SECRET),
    ring: 'pilot',
    expiresAt: '2026-11-12T00:00:00Z',
    usesLeft: 2,
  });
  const gateway = createAgentGateway({
    store,
    now: () => clock.now,
    policyFor: async () => policy.current,
    catalog: async () => null,
    content: async () => null,
  });
  const app = Fastify();
  await app.register(gateway.plugin);
  await app.ready();
  return { app, store, gateway, clock, policy };
}

async function enroll(
  f: Pick<Fixture, 'app'>,
  hostName: string,
  token = encodeEnrollToken({ secret: SECRET, fingerprint: null }),
) {
  return f.app.inject({
    method: 'POST',
    url: '/api/v1/agent/enroll',
    payload: { protocol: AGENT_PROTOCOL_VERSION, token, hostName, agentVersion: 'test' },
  });
}

function update(id: number, applicability: ReportedUpdate['applicability']): ReportedUpdate {
  return {
    updateId: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
    revisionNumber: 200,
    kbs: [String(5000000 + id)],
    applicability,
    downloaded: false,
    lastAttempt: null,
  };
}

function report(seq: number, baseSeq: number | null, updates: ReportedUpdate[], removed: string[] = []): ScanReport {
  return {
    protocol: AGENT_PROTOCOL_VERSION,
    seq,
    baseSeq,
    scannedAt: T0.toISOString(),
    source: 'offline',
    catalogSha256: null,
    rebootPending: false,
    updates,
    removed,
  };
}

test('enrollment gives a credential; unknown, expired, used-up tokens and revoked hosts are refused with stable codes', async () => {
  const f = await fixture();
  const ok = await enroll(f, 'web01');
  assert.equal(ok.statusCode, 201);
  const body = ok.json();
  assert.match(body.credential, /^plh1\./);
  assert.equal(body.ring, 'pilot');
  // The server keeps only the hash of the credential.
  const stored = f.store.hosts.get(body.hostId)!;
  assert.ok(!JSON.stringify(stored).includes(body.credential.split('.')[2]));

  const unknown = await enroll(f, 'web02', encodeEnrollToken({ secret: 'zzzzzzzzzzzzzzzzzzzz', fingerprint: null }));
  assert.equal(unknown.statusCode, 403);
  assert.equal(unknown.json().error.code, 'ENROLL_TOKEN_UNKNOWN');
  assert.equal((await enroll(f, 'web02', 'not-a-token')).json().error.code, 'ENROLL_TOKEN_MALFORMED');

  assert.equal((await enroll(f, 'web02')).statusCode, 201);
  const usedUp = await enroll(f, 'web03');
  assert.equal(usedUp.json().error.code, 'ENROLL_TOKEN_USED_UP');

  f.store.addEnrollToken({
    hash: tokenSecretHash(SECRET),
    ring: 'pilot',
    expiresAt: '2026-11-12T00:00:00Z',
    usesLeft: null,
  });
  f.clock.now = new Date('2026-11-12T00:00:01Z');
  assert.equal((await enroll(f, 'web03')).json().error.code, 'ENROLL_TOKEN_EXPIRED');
  f.clock.now = T0;

  // A revoked host's credential stops working at once, and it cannot enroll again under its name.
  f.store.revoke(body.hostId, T0);
  const afterRevoke = await f.app.inject({
    method: 'POST',
    url: '/api/v1/agent/checkin',
    headers: { authorization: `Bearer ${body.credential}` },
    payload: { protocol: 1, waitSeconds: 0, agentVersion: 't' },
  });
  assert.equal(afterRevoke.statusCode, 403);
  assert.equal(afterRevoke.json().error.code, 'AGENT_HOST_REVOKED');
  assert.equal((await enroll(f, 'WEB01')).json().error.code, 'ENROLL_HOST_REVOKED');
  assert.equal(f.store.hosts.size, 2, 'no host was created by a refused enrollment');
});

test('every agent route refuses a missing or wrong credential; a credential only reaches its own host', async () => {
  const f = await fixture();
  const a = (await enroll(f, 'web01')).json();
  const b = (await enroll(f, 'web02')).json();
  const routes = [
    {
      method: 'POST' as const,
      url: '/api/v1/agent/checkin',
      payload: { protocol: 1, waitSeconds: 0, agentVersion: 't' },
    },
    { method: 'POST' as const, url: '/api/v1/agent/reports', payload: report(1, null, []) },
    {
      method: 'POST' as const,
      url: '/api/v1/agent/actions/act-1/progress',
      payload: { protocol: 1, state: 'received', at: T0.toISOString() },
    },
    { method: 'GET' as const, url: '/api/v1/agent/catalog' },
    { method: 'GET' as const, url: `/api/v1/agent/content/${'a'.repeat(40)}` },
  ];
  const forged = `plh1.${a.hostId}.${'x'.repeat(43)}`;
  for (const r of routes) {
    assert.equal((await f.app.inject(r)).json().error.code, 'AGENT_UNAUTHENTICATED', r.url);
    const wrong = await f.app.inject({ ...r, headers: { authorization: `Bearer ${forged}` } });
    assert.equal(wrong.statusCode, 401, r.url);
    assert.equal(wrong.json().error.code, 'AGENT_CREDENTIAL_INVALID', r.url);
  }
  // An action for web01 cannot be reported on by web02.
  const action = f.store.createAction('scan', [a.hostId], T0);
  const cross = await f.app.inject({
    method: 'POST',
    url: `/api/v1/agent/actions/${action.id}/progress`,
    headers: { authorization: `Bearer ${b.credential}` },
    payload: { protocol: 1, state: 'received', at: T0.toISOString() },
  });
  assert.equal(cross.statusCode, 404);
  assert.equal(cross.json().error.code, 'AGENT_ACTION_NOT_FOUND');
  assert.equal(action.progress.size, 0);
  // web02's report lands on web02 only.
  await f.app.inject({
    method: 'POST',
    url: '/api/v1/agent/reports',
    headers: { authorization: `Bearer ${b.credential}` },
    payload: report(1, null, [update(1, 'needed')]),
  });
  assert.equal((await f.store.inventory(a.hostId)).updates.size, 0);
  assert.equal((await f.store.inventory(b.hostId)).updates.size, 1);
});

test('reports: a resent report changes nothing; deltas apply on their base; a stale base asks for a full report', async () => {
  const f = await fixture();
  const a = (await enroll(f, 'web01')).json();
  const send = (r: ScanReport) =>
    f.app.inject({
      method: 'POST',
      url: '/api/v1/agent/reports',
      headers: { authorization: `Bearer ${a.credential}` },
      payload: r,
    });
  assert.deepEqual(
    (await send(report(1, null, [update(1, 'needed'), update(2, 'needed'), update(3, 'installed')]))).json(),
    { ackedSeq: 1, status: 'applied' },
  );
  // A delta: 1 installed now, 2 gone (superseded), 4 new.
  assert.equal(
    (await send(report(2, 1, [update(1, 'installed'), update(4, 'needed')], [update(2, 'needed').updateId]))).json()
      .status,
    'applied',
  );
  // The same delta again (the agent never saw our answer): nothing changes.
  const resent = await send(report(2, 1, [update(9, 'needed')]));
  assert.deepEqual(resent.json(), { ackedSeq: 2, status: 'duplicate' });
  const inv = await f.store.inventory(a.hostId);
  assert.deepEqual([...inv.updates.values()].map((u) => [u.kbs[0], u.applicability]).sort(), [
    ['5000001', 'installed'],
    ['5000003', 'installed'],
    ['5000004', 'needed'],
  ]);
  const stale = await send(report(5, 3, [update(5, 'needed')]));
  assert.equal(stale.statusCode, 409);
  assert.equal(stale.json().error.code, 'AGENT_REPORT_BASE_MISMATCH');
  assert.equal((await f.store.inventory(a.hostId)).updates.size, 3);
});

test('malformed, unknown-field and oversize reports get 400 with a stable code and change nothing', async () => {
  const f = await fixture();
  const a = (await enroll(f, 'web01')).json();
  const headers = { authorization: `Bearer ${a.credential}`, 'content-type': 'application/json' };
  await f.app.inject({
    method: 'POST',
    url: '/api/v1/agent/reports',
    headers,
    payload: report(1, null, [update(1, 'needed')]),
  });
  const bad: [string, string | object, string][] = [
    ['not JSON', '{"seq": 2,', 'AGENT_REQUEST_INVALID'],
    ['unknown field', { ...report(2, 1, []), extra: true }, 'AGENT_REQUEST_INVALID'],
    [
      'unknown field in an update',
      report(2, 1, [{ ...update(2, 'needed'), surprise: 1 } as ReportedUpdate]),
      'AGENT_REQUEST_INVALID',
    ],
    ['bad update id', report(2, 1, [{ ...update(2, 'needed'), updateId: 'nope' }]), 'AGENT_REQUEST_INVALID'],
    [
      'bad HRESULT',
      report(2, 1, [
        {
          ...update(2, 'needed'),
          lastAttempt: {
            phase: 'install',
            resultCode: 'failed',
            hresult: '80240022',
            attempts: 1,
            at: T0.toISOString(),
          },
        },
      ]),
      'AGENT_REQUEST_INVALID',
    ],
    ['duplicate update', report(2, 1, [update(2, 'needed'), update(2, 'installed')]), 'AGENT_REPORT_INVALID'],
    [
      'oversize',
      JSON.stringify(report(2, 1, [update(2, 'needed')])).replace(
        '"removed":[]',
        `"removed":[],"pad":"${'x'.repeat(5 * 1024 * 1024)}"`,
      ),
      'AGENT_REPORT_TOO_LARGE',
    ],
  ];
  for (const [what, payload, code] of bad) {
    const res = await f.app.inject({
      method: 'POST',
      url: '/api/v1/agent/reports',
      headers,
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
    assert.equal(res.statusCode, 400, what);
    assert.equal(res.json().error.code, code, what);
  }
  const inv = await f.store.inventory(a.hostId);
  assert.equal(inv.ackedSeq, 1);
  assert.deepEqual([...inv.updates.keys()], [update(1, 'needed').updateId]);
});

test('a held check-in answers as soon as an action is created for its host, over a real socket', async () => {
  const f = await fixture();
  const a = (await enroll(f, 'web01')).json();
  const address = await f.app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const held = fetch(`${address}/api/v1/agent/checkin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ protocol: 1, waitSeconds: 50, agentVersion: 't' }),
    });
    while (!f.gateway.isConnected(a.hostId)) await new Promise((r) => setImmediate(r));
    assert.equal(f.gateway.connected(), 1);
    const started = performance.now();
    const action = f.store.createAction('install', [a.hostId], T0);
    assert.equal(f.gateway.wake([a.hostId]), 1);
    const body = (await (await held).json()) as { actions: { id: string }[]; policy: { ring: string } };
    assert.ok(performance.now() - started < 2_000);
    assert.deepEqual(
      body.actions.map((x) => x.id),
      [action.id],
    );
    assert.equal(body.policy.ring, 'pilot');
    assert.equal(f.gateway.connected(), 0);
  } finally {
    f.gateway.close();
    await f.app.close();
  }
});

test('a check-in naming the policy the agent holds is answered without it; a changed policy is sent again', async () => {
  const f = await fixture();
  const a = (await enroll(f, 'web01')).json();
  const checkin = async (policyDigest?: string) => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: `Bearer ${a.credential}` },
      payload: { protocol: 1, waitSeconds: 0, agentVersion: 't', ...(policyDigest ? { policyDigest } : {}) },
    });
    assert.equal(res.statusCode, 200, res.body);
    // Written as text around the policy's JSON: it must still be exactly the protocol's answer.
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const errors = [...Value.Errors(CheckinResponse, res.json())].map((e) => `${e.path}: ${e.message}`);
    assert.deepEqual(errors, []);
    return res.json<{ policy?: AgentPolicy; policyDigest: string }>();
  };
  const first = await checkin();
  assert.deepEqual(first.policy, POLICY);
  assert.equal(first.policyDigest, createHash('sha256').update(JSON.stringify(POLICY)).digest('hex'));
  // Held: not sent again, named by the same digest.
  const again = await checkin(first.policyDigest);
  assert.equal(again.policy, undefined);
  assert.equal(again.policyDigest, first.policyDigest);
  // Changed (a rule now allows an update): the new policy goes out under a new digest.
  f.policy.current = { ...POLICY, allowedUpdateIds: [update(1, 'needed').updateId] };
  const changed = await checkin(first.policyDigest);
  assert.deepEqual(changed.policy, f.policy.current);
  assert.notEqual(changed.policyDigest, first.policyDigest);
  // A digest the server never gave, or none at all: the whole policy.
  assert.deepEqual((await checkin('0'.repeat(64))).policy, f.policy.current);
  const garbled = await f.app.inject({
    method: 'POST',
    url: '/api/v1/agent/checkin',
    headers: { authorization: `Bearer ${a.credential}` },
    payload: { protocol: 1, waitSeconds: 0, agentVersion: 't', policyDigest: 'not-a-digest' },
  });
  assert.equal(garbled.statusCode, 400);
  assert.equal(garbled.json().error.code, 'AGENT_REQUEST_INVALID');
});

test('a held check-in whose policy changed is answered at once with the new one; an unchanged one stays held', async () => {
  const f = await fixture();
  const a = (await enroll(f, 'web01')).json();
  const address = await f.app.listen({ port: 0, host: '127.0.0.1' });
  const hold = (policyDigest: string) =>
    fetch(`${address}/api/v1/agent/checkin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ protocol: 1, waitSeconds: 50, agentVersion: 't', policyDigest }),
    });
  try {
    const old = createHash('sha256').update(JSON.stringify(POLICY)).digest('hex');
    // The agent holds POLICY; its last report made the server allow U1.
    f.policy.current = { ...POLICY, allowedUpdateIds: [update(1, 'needed').updateId] };
    const started = performance.now();
    const answer = (await (await hold(old)).json()) as {
      actions: unknown[];
      policy?: AgentPolicy;
      policyDigest: string;
    };
    assert.ok(performance.now() - started < 10_000, 'at once, not when the 50 s wait runs out');
    assert.deepEqual(answer.actions, [], 'no action: the policy alone');
    assert.deepEqual(answer.policy, f.policy.current);
    // Now it holds the current one: the check-in stays held until there is news.
    const held = hold(answer.policyDigest);
    while (!f.gateway.isConnected(a.hostId)) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); // the decision ahead has run
    assert.equal(f.gateway.isConnected(a.hostId), true);
    const action = f.store.createAction('scan', [a.hostId], T0);
    f.gateway.wake([a.hostId]);
    const woken = (await (await held).json()) as { actions: { id: string }[]; policy?: AgentPolicy };
    assert.deepEqual(
      woken.actions.map((x) => x.id),
      [action.id],
    );
    assert.equal(woken.policy, undefined);
  } finally {
    f.gateway.close();
    await f.app.close();
  }
});

test("an update's cached files: only for an update the host may install; 503 while the server still downloads; none without a cache", async () => {
  const allowed = '00000000-0000-4000-8000-000000000001';
  const other = '00000000-0000-4000-8000-000000000002';
  let answer: 'pending' | null | { digest: string; sha1: string; sha256: null; size: number; fileName: string }[] =
    'pending';
  const asked: string[] = [];
  const store = new MemoryGatewayStore();
  store.addEnrollToken({ hash: tokenSecretHash(SECRET), ring: 'pilot', expiresAt: null, usesLeft: null });
  const gateway = createAgentGateway({
    store,
    now: () => T0,
    policyFor: async () => ({ ...POLICY, allowedUpdateIds: [allowed] }),
    catalog: async () => null,
    content: async () => null,
    updateContent: async (id) => (asked.push(id), answer),
  });
  const app = Fastify();
  await app.register(gateway.plugin);
  const f = { app, store, gateway, clock: { now: T0 } };
  const auth = { authorization: `Bearer ${(await enroll(f, 'web01')).json().credential}` };
  const get = (id: string) => app.inject({ method: 'GET', url: `/api/v1/agent/updates/${id}/content`, headers: auth });

  const refused = await get(other);
  assert.equal(refused.statusCode, 403);
  assert.equal(refused.json().error.code, 'AGENT_CONTENT_NOT_ALLOWED');
  assert.deepEqual(asked, [], 'nothing is fetched for an update the host may not install');

  const pending = await get(allowed);
  assert.equal(pending.statusCode, 503);
  assert.equal(pending.json().error.code, 'AGENT_CONTENT_DOWNLOADING');

  answer = [{ digest: 'ab'.repeat(20), sha1: 'ab'.repeat(20), sha256: null, size: 10, fileName: 'x.msu' }];
  const ready = await get(allowed.toUpperCase());
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(
    ready.json().files.map((x: { url: string }) => x.url),
    [`/api/v1/agent/content/${'ab'.repeat(20)}`],
  );

  answer = null;
  assert.equal((await get(allowed)).json().error.code, 'AGENT_CONTENT_NONE');
  assert.equal(
    (await app.inject({ method: 'GET', url: `/api/v1/agent/updates/${allowed}/content` })).statusCode,
    401,
    'agents only',
  );
  gateway.close();
  await app.close();
});

test('the catalog cab goes out by digest with a strong ETag, a conditional GET, resumable ranges and a year of caching', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-gateway-cab-'));
  const bytes = Buffer.from('MSCF'.padEnd(1000, '.'));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const path = join(dir, `${sha256}.cab`);
  await writeFile(path, bytes);
  const store = new MemoryGatewayStore();
  store.addEnrollToken({ hash: tokenSecretHash(SECRET), ring: 'pilot', expiresAt: null, usesLeft: null });
  const gateway = createAgentGateway({
    store,
    now: () => T0,
    policyFor: async () => POLICY,
    catalog: async () => ({ path, sha256, size: bytes.length }),
    content: async () => null,
  });
  const app = Fastify();
  await app.register(gateway.plugin);
  const f = { app, store, gateway, clock: { now: T0 } };
  const auth = { authorization: `Bearer ${(await enroll(f, 'web01')).json().credential}` };
  const get = (headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: `/api/v1/agent/catalog/${sha256}.cab`, headers: { ...auth, ...headers } });
  try {
    const whole = await get();
    assert.equal(whole.statusCode, 200);
    assert.deepEqual(whole.rawPayload, bytes);
    assert.equal(whole.headers.etag, `"${sha256}"`);
    assert.equal(whole.headers['content-type'], 'application/vnd.ms-cab-compressed');
    assert.match(String(whole.headers['cache-control']), /immutable/);

    assert.equal(
      (await get({ 'if-none-match': `"${sha256}"` })).statusCode,
      304,
      'an agent with this cab gets no bytes',
    );

    const tail = await get({ range: 'bytes=900-' });
    assert.equal(tail.statusCode, 206, 'a broken download resumes where it stopped');
    assert.equal(tail.headers['content-range'], `bytes 900-999/${bytes.length}`);
    assert.deepEqual(tail.rawPayload, bytes.subarray(900));

    const stale = await get({ range: 'bytes=900-', 'if-range': '"another-cab"' });
    assert.equal(stale.statusCode, 200, 'a partial copy of another cab gets the whole file');
    assert.equal(stale.rawPayload.length, bytes.length);

    const beyond = await get({ range: 'bytes=5000-' });
    assert.equal(beyond.statusCode, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${bytes.length}`);
  } finally {
    gateway.close();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});
