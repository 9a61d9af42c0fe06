/**
 * Authentication as a person or a script sees it: signing in, the session cookie's attributes,
 * CSRF on changes, API tokens shown once and refused once revoked or expired, roles, and every
 * change in the audit log. Runs on SQLite and PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { forEachStore, testApp, TEST_ACTOR, type TestApp } from './support/server-harness.ts';
import { createUser } from '../src/server/accounts.ts';

function cookieOf(setCookie: string | string[] | undefined): string {
  const line = Array.isArray(setCookie) ? setCookie[0]! : setCookie!;
  return line.split(';')[0]!;
}

forEachStore('server authentication', (kind) => {
  let t: TestApp;
  before(async () => {
    t = await testApp(kind);
    await createUser(t.deps, TEST_ACTOR, { name: 'alice', role: 'operator', password: 'correct horse battery' });
  });
  after(() => t.close());

  test('a user signs in, gets an HttpOnly SameSite=Strict cookie and a CSRF token, and changes need that token', async () => {
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { name: 'alice', password: 'wrong password' },
    });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().error.code, 'LOGIN_FAILED');
    assert.equal(wrong.headers['set-cookie'], undefined);

    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { name: 'Alice', password: 'correct horse battery' },
    });
    assert.equal(login.statusCode, 200, login.body);
    const setCookie = String(login.headers['set-cookie']);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const body = login.json();
    assert.equal(body.role, 'operator');
    assert.ok(body.csrfToken.length >= 40);
    const cookie = cookieOf(login.headers['set-cookie']);

    const me = await t.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } });
    assert.equal(me.statusCode, 200);
    assert.deepEqual(
      { name: me.json().name, role: me.json().role, csrf: me.json().csrfToken },
      { name: 'alice', role: 'operator', csrf: body.csrfToken },
    );

    // A forged cross-site request carries the cookie but cannot know the token.
    const forged = await t.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie } });
    assert.equal(forged.statusCode, 403);
    assert.equal(forged.json().error.code, 'CSRF_INVALID');
    const badToken = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/session',
      headers: { cookie, 'x-csrf-token': 'x'.repeat(43) },
    });
    assert.equal(badToken.json().error.code, 'CSRF_INVALID');

    const logout = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/session',
      headers: { cookie, 'x-csrf-token': body.csrfToken },
    });
    assert.equal(logout.statusCode, 204);
    const after_ = await t.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } });
    assert.equal(after_.statusCode, 401);
    assert.equal(after_.json().error.code, 'AUTH_INVALID');
  });

  test('a session expires after its idle time', async () => {
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { name: 'alice', password: 'correct horse battery' },
    });
    const cookie = cookieOf(login.headers['set-cookie']);
    t.clock.advance(13 * 60 * 60 * 1000);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error.code, 'AUTH_EXPIRED');
  });

  test('disabling a user ends its sessions at once', async () => {
    await createUser(t.deps, TEST_ACTOR, { name: 'bob', role: 'viewer', password: 'another password' });
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { name: 'bob', password: 'another password' },
    });
    const cookie = cookieOf(login.headers['set-cookie']);
    const disable = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/users/bob',
      headers: { authorization: t.bearer.admin },
      payload: { disabled: true },
    });
    assert.equal(disable.statusCode, 200, disable.body);
    assert.equal(disable.json().disabled, true);
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie } })).statusCode, 401);
    const again = await t.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { name: 'bob', password: 'another password' },
    });
    assert.equal(again.statusCode, 401);
  });

  test('an API token is shown once, works as Bearer, records its last use, and is refused once revoked', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: { authorization: t.bearer.admin },
      payload: { name: 'ci', role: 'viewer' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const { id, token } = created.json();
    assert.match(token, /^plt_/);
    const list = await t.app.inject({
      method: 'GET',
      url: '/api/v1/tokens',
      headers: { authorization: t.bearer.admin },
    });
    // The secret is base64url and may itself contain '_': take everything after `plt_<id>_`.
    const secret = token.slice(token.indexOf('_', 'plt_'.length) + 1);
    assert.equal(secret.length, 43);
    assert.ok(!list.body.includes(secret), 'the secret never appears again');
    const ci = list.json().tokens.find((x: { id: string }) => x.id === id);
    assert.equal(ci.lastUsedAt, null);

    const use = await t.app.inject({
      method: 'GET',
      url: '/api/v1/session',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(use.statusCode, 200);
    assert.deepEqual(
      { kind: use.json().kind, name: use.json().name, role: use.json().role },
      { kind: 'token', name: 'ci', role: 'viewer' },
    );
    const used = (
      await t.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { authorization: t.bearer.admin } })
    )
      .json()
      .tokens.find((x: { id: string }) => x.id === id);
    assert.equal(used.lastUsedAt, t.clock.now().toISOString());

    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/tokens/${id}`,
      headers: { authorization: t.bearer.admin },
    });
    assert.equal(revoke.statusCode, 204);
    const refused = await t.app.inject({
      method: 'GET',
      url: '/api/v1/session',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.json().error.code, 'AUTH_REVOKED');
  });

  test('an expired token is refused; a tampered one is invalid', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: { authorization: t.bearer.admin },
      payload: { name: 'short', role: 'admin', expiresInDays: 1 },
    });
    const { token } = created.json();
    const tampered = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    assert.equal(
      (
        await t.app.inject({ method: 'GET', url: '/api/v1/users', headers: { authorization: `Bearer ${tampered}` } })
      ).json().error.code,
      'AUTH_INVALID',
    );
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/v1/users', headers: { authorization: `Bearer ${token}` } }))
        .statusCode,
      200,
    );
    t.clock.advance(25 * 60 * 60 * 1000);
    const expired = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(expired.statusCode, 401);
    assert.equal(expired.json().error.code, 'AUTH_EXPIRED');
  });

  test('unknown fields are refused with 400 and change nothing', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { authorization: t.bearer.admin },
      payload: { name: 'carol', role: 'viewer', password: 'long enough pw', isAdmin: true },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'REQUEST_INVALID');
    assert.match(res.json().error.message, /isAdmin/);
    const users = (
      await t.app.inject({ method: 'GET', url: '/api/v1/users', headers: { authorization: t.bearer.admin } })
    )
      .json()
      .users.map((u: { name: string }) => u.name);
    assert.ok(!users.includes('carol'));
  });

  test('a body over the limit is refused with 413', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { authorization: t.bearer.admin, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'x', role: 'viewer', password: 'p'.repeat(300 * 1024) }),
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'BODY_TOO_LARGE');
  });

  test('the last admin cannot be removed or demoted', async () => {
    await createUser(t.deps, TEST_ACTOR, { name: 'root', role: 'admin', password: 'admin password' });
    const demote = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/users/root',
      headers: { authorization: t.bearer.admin },
      payload: { role: 'viewer' },
    });
    assert.equal(demote.statusCode, 409);
    assert.equal(demote.json().error.code, 'LAST_ADMIN');
  });

  test('every change is in the audit log with who, when, what and from where', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/audit?action=token.',
      headers: { authorization: t.bearer.admin },
    });
    assert.equal(res.statusCode, 200);
    const entries = res.json().entries as { actor: string; action: string; ip: string | null; at: string }[];
    const revoke = entries.find((e) => e.action === 'token.revoke');
    assert.ok(revoke, 'the revocation is audited');
    assert.equal(revoke.actor, 'token:test-admin');
    assert.equal(revoke.ip, '127.0.0.1');
    const refusedLogin = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/audit?action=session.refused',
        headers: { authorization: t.bearer.admin },
      })
    ).json().entries;
    assert.ok(refusedLogin.length >= 1);
  });

  test('sign-in is rate-limited per address', async () => {
    let last = 0;
    for (let i = 0; i < 12; i++) {
      last = (
        await t.app.inject({
          method: 'POST',
          url: '/api/v1/session',
          remoteAddress: '10.9.9.9',
          payload: { name: 'nobody', password: 'guess' + i },
        })
      ).statusCode;
    }
    assert.equal(last, 429);
  });
});
