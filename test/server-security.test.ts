/**
 * The OpenAPI-driven security test: every route in /api/v1/openapi.json is called without a
 * credential, with a wrong, an expired and a revoked one, and with each role below the one it
 * needs — and must refuse every time. Changes made with a session cookie must also carry the CSRF
 * token. The access each route declares is checked against the role model written out here
 * (admin changes people and policy, operator triggers, viewer reads), so the document cannot
 * quietly grant more. Runs on SQLite and PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  enrollRequest,
  enrollToken,
  forEachStore,
  testApp,
  TEST_ACTOR,
  type TestApp,
} from './support/server-harness.ts';
import { createApiToken, createUser } from '../src/server/accounts.ts';
import { AGENT_PROTOCOL_VERSION } from '../src/domain/agent-protocol.ts';

type Access = 'public' | 'viewer' | 'operator' | 'admin' | 'agent';
interface Operation {
  method: string;
  path: string;
  access: Access;
}

/** What the role model says each route needs, independent of the document. */
function expectedAccess(method: string, path: string): Access {
  if (path.startsWith('/api/v1/agent/')) return path === '/api/v1/agent/enroll' ? 'public' : 'agent';
  if (['/healthz', '/readyz'].includes(path) || (path === '/api/v1/session' && method === 'POST')) return 'public';
  if (/^\/api\/v1\/(users|tokens|enroll-tokens|audit)/.test(path)) return 'admin';
  if (path === '/api/v1/session') return 'viewer';
  if (method === 'GET') return 'viewer';
  if (path === '/api/v1/rules/preview') return 'viewer';
  if (['/api/v1/actions', '/api/v1/catalog/sync', '/api/v1/content/cleanup'].includes(path)) return 'operator';
  return 'admin';
}

const ROLES = ['viewer', 'operator', 'admin'] as const;

forEachStore('every route refuses what it must', (kind) => {
  let t: TestApp;
  let ops: Operation[];
  const cred: Record<string, string> = {};
  let cookie = '';
  let csrf = '';
  let expiredCookie = '';
  let revokedAgent = '';

  before(async () => {
    t = await testApp(kind);
    const doc = (
      await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: t.bearer.viewer } })
    ).json();
    ops = Object.entries(doc.paths as Record<string, Record<string, { 'x-patchline-access': Access }>>).flatMap(
      ([path, methods]) =>
        Object.entries(methods).map(([method, op]) => ({
          method: method.toUpperCase(),
          path,
          access: op['x-patchline-access'],
        })),
    );
    const expiring = await createApiToken(t.deps, TEST_ACTOR, { name: 'expiring', role: 'admin', expiresInDays: 1 });
    const revoked = await createApiToken(t.deps, TEST_ACTOR, { name: 'revoked', role: 'admin' });
    await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/tokens/${revoked.id}`,
      headers: { authorization: t.bearer.admin },
    });
    cred.revoked = `Bearer ${revoked.token}`;
    cred.wrong = `Bearer plt_${'0'.repeat(16)}_${'A'.repeat(43)}`;
    cred.garbage = 'Basic YWRtaW46YWRtaW4=';

    await createUser(t.deps, TEST_ACTOR, { name: 'ann', role: 'admin', password: 'ann password 1' });
    for (const name of ['ann', 'ann']) {
      const login = await t.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { name, password: 'ann password 1' },
      });
      const c = String(login.headers['set-cookie']).split(';')[0]!;
      if (!cookie) [cookie, csrf] = [c, login.json().csrfToken];
      else expiredCookie = c;
    }
    // The second session is made to expire; the first stays valid.
    await t.store.db
      .updateTable('sessions')
      .set({ expires_at: '2000-01-01T00:00:00.000Z' })
      .where(
        'id_hash',
        '=',
        (await import('../src/server/auth/secrets.ts')).sha256Hex(decodeURIComponent(expiredCookie.split('=')[1]!)),
      )
      .execute();

    // An enrolled host, then revoked: its credential must stop working everywhere at once.
    const enrolled = await enrollRequest(t, await enrollToken(t), 'web01');
    assert.equal(enrolled.statusCode, 201, enrolled.body);
    revokedAgent = `Bearer ${enrolled.json().credential}`;
    const checkin = await t.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: revokedAgent },
      payload: { protocol: AGENT_PROTOCOL_VERSION, waitSeconds: 0, agentVersion: 'test' },
    });
    assert.equal(checkin.statusCode, 200, 'the credential works before it is revoked');
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

    t.clock.advance(2 * 86_400_000);
    cred.expired = `Bearer ${expiring.token}`;
    // A fresh session after the clock moved (the first one has expired with it).
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { name: 'ann', password: 'ann password 1' },
    });
    [cookie, csrf] = [String(login.headers['set-cookie']).split(';')[0]!, login.json().csrfToken];
  });
  after(() => t.close());

  const call = (op: Operation, headers: Record<string, string>) =>
    t.app.inject({
      method: op.method as 'GET',
      url: op.path.replace(/\{[^}]+\}/g, 'x0'),
      headers: { ...headers, 'content-type': 'application/json' },
      payload: op.method === 'GET' || op.method === 'DELETE' ? undefined : '{}',
    });

  test('the document lists every route with the access the role model gives it', () => {
    assert.ok(ops.length >= 35, `found ${ops.length} operations`);
    const wrong = ops
      .filter((op) => op.access !== expectedAccess(op.method, op.path))
      .map((op) => `${op.method} ${op.path}: ${op.access}, expected ${expectedAccess(op.method, op.path)}`);
    assert.deepEqual(wrong, []);
  });

  test('without a credential, with a wrong, expired or revoked one, every non-public route refuses', async () => {
    const failures: string[] = [];
    for (const op of ops.filter((o) => o.access !== 'public')) {
      const cases: [string, Record<string, string>, string | undefined][] =
        op.access === 'agent'
          ? [
              ['none', {}, undefined],
              ['wrong', { authorization: cred.wrong! }, undefined],
              ['revoked host', { authorization: revokedAgent }, undefined],
              ['admin token', { authorization: t.bearer.admin }, undefined],
              ['session', { cookie, 'x-csrf-token': csrf }, undefined],
            ]
          : [
              ['none', {}, 'AUTH_REQUIRED'],
              ['wrong', { authorization: cred.wrong! }, 'AUTH_INVALID'],
              ['not bearer', { authorization: cred.garbage! }, 'AUTH_INVALID'],
              ['expired', { authorization: cred.expired! }, 'AUTH_EXPIRED'],
              ['revoked', { authorization: cred.revoked! }, 'AUTH_REVOKED'],
              ['expired session', { cookie: expiredCookie, 'x-csrf-token': csrf }, 'AUTH_EXPIRED'],
            ];
      for (const [name, headers, code] of cases) {
        const res = await call(op, headers);
        const ok = res.statusCode === 401 || res.statusCode === 403;
        if (!ok || (code && res.json().error?.code !== code))
          failures.push(`${op.method} ${op.path} [${name}] → ${res.statusCode} ${res.body.slice(0, 120)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('each role is refused what it may not do', async () => {
    const failures: string[] = [];
    for (const op of ops.filter((o) => ['viewer', 'operator', 'admin'].includes(o.access))) {
      for (const role of ROLES.slice(0, ROLES.indexOf(op.access as (typeof ROLES)[number]))) {
        const res = await call(op, { authorization: t.bearer[role] });
        if (res.statusCode !== 403 || res.json().error.code !== 'FORBIDDEN_ROLE')
          failures.push(`${op.method} ${op.path} as ${role} → ${res.statusCode}`);
      }
      // And the role it needs gets past authentication (whatever the dummy request then gets). The
      // event stream never ends by itself, so it is checked with a real socket elsewhere.
      if (op.path === '/api/v1/events') continue;
      const allowed = await call(op, { authorization: t.bearer[op.access as 'viewer'] });
      if (allowed.statusCode === 401 || allowed.statusCode === 403)
        failures.push(`${op.method} ${op.path} as ${op.access} refused: ${allowed.body.slice(0, 120)}`);
    }
    assert.deepEqual(failures, []);
  });

  test('a change made with the session cookie but without its CSRF token is refused', async () => {
    const failures: string[] = [];
    for (const op of ops.filter((o) => o.method !== 'GET' && !['public', 'agent'].includes(o.access))) {
      for (const headers of [{ cookie }, { cookie, 'x-csrf-token': 'forged' }] as Record<string, string>[]) {
        const res = await call(op, headers);
        if (res.statusCode !== 403 || res.json().error.code !== 'CSRF_INVALID')
          failures.push(`${op.method} ${op.path} → ${res.statusCode}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('the unauthenticated health endpoints reveal nothing but their status', async () => {
    for (const url of ['/healthz', '/readyz']) {
      const res = await t.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(Object.keys(res.json()), ['status']);
    }
  });
});
