/**
 * Console sign-in: POST /api/v1/session (name + password → session cookie + CSRF token),
 * GET /api/v1/session (who am I, my role, my CSRF token), DELETE /api/v1/session (sign out).
 * The cookie is HttpOnly, SameSite=Strict, and Secure under TLS; its value is stored only as a
 * hash. Sign-in is rate-limited per address; failures are audited.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { deleteSession, insertSession } from '../../store/server/credentials-repo.ts';
import { findUser } from '../../store/server/users-repo.ts';
import { appendAudit } from '../../store/server/audit-repo.ts';
import type { ServerDeps } from '../context.ts';
import { ApiError } from '../errors.ts';
import { commitChange } from '../changes.ts';
import { SESSION_COOKIE, SESSION_IDLE_MS, SESSION_MAX_MS } from '../auth/authenticate.ts';
import { decoyHash, MAX_PASSWORD_CHARS, verifyPassword } from '../auth/password.ts';
import { isRole } from '../auth/roles.ts';
import { newSecret, sha256Hex } from '../auth/secrets.ts';
import { errors, RoleSchema, Nullable, IsoTime } from './schemas.ts';

/** Sign-in attempts per client address and minute: enough for a typo, too few to guess. */
export const LOGIN_RATE_LIMIT = { max: 10, timeWindow: 60_000 } as const;

const Login = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_CHARS }),
  },
  { additionalProperties: false },
);
const Me = Type.Object({
  kind: Type.Union([Type.Literal('user'), Type.Literal('token')]),
  name: Type.String(),
  role: RoleSchema,
  /** Send it back in X-CSRF-Token on every POST/PUT/PATCH/DELETE made with the cookie. */
  csrfToken: Nullable(Type.String()),
  expiresAt: Type.Optional(IsoTime),
});

export const sessionRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  app.post(
    '/api/v1/session',
    {
      config: { access: 'public', rateLimit: LOGIN_RATE_LIMIT },
      schema: {
        tags: ['session'],
        summary: 'Sign in: sets the session cookie, returns the CSRF token',
        body: Login,
        response: errors({ 200: Me }),
      },
    },
    async (request, reply) => {
      const name = request.body.name.trim().toLowerCase();
      const user = await findUser(deps.store.db, name);
      // Hash even for an unknown user, so the answer's timing does not tell which names exist.
      const ok = await verifyPassword(request.body.password, user?.password_hash ?? (await decoyHash()));
      const now = deps.now();
      if (!user || !ok || user.disabled_at || !isRole(user.role)) {
        await appendAudit(deps.store.db, {
          at: now.toISOString(),
          actor: `anonymous`,
          action: 'session.refused',
          target: name,
          details: {},
          ip: request.ip,
        });
        throw new ApiError(401, 'LOGIN_FAILED', 'Wrong user name or password (or the user is disabled).');
      }
      const sessionId = newSecret();
      const csrfToken = newSecret();
      const expiresAt = new Date(now.getTime() + Math.min(SESSION_IDLE_MS, SESSION_MAX_MS)).toISOString();
      await commitChange(deps, { actor: `user:${user.name}`, ip: request.ip }, async (trx, record) => {
        await insertSession(trx, {
          id_hash: sha256Hex(sessionId),
          user_name: user.name,
          csrf_token: csrfToken,
          created_at: now.toISOString(),
          expires_at: expiresAt,
          last_seen_at: now.toISOString(),
          ip: request.ip,
        });
        await record({ action: 'session.create', target: user.name, event: false });
      });
      void reply.setCookie(SESSION_COOKIE, sessionId, {
        httpOnly: true,
        sameSite: 'strict',
        secure: deps.secureCookies,
        path: '/',
      });
      return { kind: 'user' as const, name: user.name, role: user.role, csrfToken, expiresAt };
    },
  );

  app.get(
    '/api/v1/session',
    {
      config: { access: 'viewer' },
      schema: { tags: ['session'], summary: 'Who is calling, with which role', response: errors({ 200: Me }) },
    },
    async (request) => {
      const p = request.principal!;
      return { kind: p.kind, name: p.name, role: p.role, csrfToken: p.kind === 'user' ? p.csrfToken : null };
    },
  );

  app.delete(
    '/api/v1/session',
    {
      config: { access: 'viewer' },
      schema: { tags: ['session'], summary: 'Sign out: ends the session', response: errors({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      const p = request.principal!;
      if (p.kind === 'user') {
        await commitChange(deps, { actor: `user:${p.name}`, ip: request.ip }, async (trx, record) => {
          await deleteSession(trx, p.sessionHash);
          await record({ action: 'session.delete', target: p.name, event: false });
        });
      }
      void reply.clearCookie(SESSION_COOKIE, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: deps.secureCookies,
      });
      return reply.status(204).send(null);
    },
  );
};
