/**
 * Authentication and authorisation, in an `onRequest` hook so a request is refused before its
 * body is even parsed. Credentials, in order:
 *  - `Authorization: Bearer plt_…` — an API token (scripts); role from the token.
 *  - the `patchline_session` cookie — a console session; unsafe methods must also carry the
 *    session's CSRF token in `X-CSRF-Token` (a forged cross-site form cannot read it).
 * Each route's `config.access` says who may call it; a route without one is admin-only. The agent
 * gateway's routes (/api/v1/agent/…) authenticate agent credentials in the gateway's own hook and
 * are skipped here (a person's token is no agent credential, so it is refused there).
 *
 * Refusals: 401 AUTH_REQUIRED (no credential), AUTH_INVALID (unknown or wrong), AUTH_EXPIRED,
 * AUTH_REVOKED; 403 FORBIDDEN_ROLE (authenticated, not allowed), CSRF_INVALID.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {} from '@fastify/cookie';
import { findApiToken, findSession, touchApiToken, touchSession } from '../../store/server/credentials-repo.ts';
import { findUser } from '../../store/server/users-repo.ts';
import { AGENT_API_PREFIX } from '../../domain/agent-protocol.ts';
import type { ServerDeps } from '../context.ts';
import { ApiError } from '../errors.ts';
import { DEFAULT_ACCESS, isRole, roleAllows, type Access, type Principal } from './roles.ts';
import { parseCredential, safeEqual, secretMatches, sha256Hex } from './secrets.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

export const SESSION_COOKIE = 'patchline_session';
export const CSRF_HEADER = 'x-csrf-token';
/** last_used_at / session expiry are written at most this often per credential (not on every request). */
export const TOUCH_INTERVAL_MS = 60_000;
/** A console session ends after this long without use… */
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
/** …and at the latest this long after sign-in. */
export const SESSION_MAX_MS = 7 * 24 * 60 * 60 * 1000;

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const unauthorized = (code: string, message: string): ApiError => new ApiError(401, code, message);

async function tokenPrincipal(deps: ServerDeps, id: string, secret: string, now: Date): Promise<Principal> {
  const row = await findApiToken(deps.store.db, id);
  if (!row || !secretMatches(secret, row.secret_hash) || !isRole(row.role))
    throw unauthorized('AUTH_INVALID', 'The API token is not valid.');
  if (row.revoked_at) throw unauthorized('AUTH_REVOKED', `The API token "${row.name}" was revoked; create a new one.`);
  if (row.expires_at && row.expires_at <= now.toISOString())
    throw unauthorized('AUTH_EXPIRED', `The API token "${row.name}" expired at ${row.expires_at}; create a new one.`);
  if (!row.last_used_at || now.getTime() - Date.parse(row.last_used_at) >= TOUCH_INTERVAL_MS)
    await touchApiToken(deps.store.db, id, now.toISOString());
  return { kind: 'token', id: row.id, name: row.name, role: row.role };
}

async function sessionPrincipal(
  deps: ServerDeps,
  request: FastifyRequest,
  cookie: string,
  now: Date,
): Promise<Principal> {
  const idHash = sha256Hex(cookie);
  const session = await findSession(deps.store.db, idHash);
  if (!session) throw unauthorized('AUTH_INVALID', 'The session is not valid; sign in again.');
  if (session.expires_at <= now.toISOString())
    throw unauthorized('AUTH_EXPIRED', 'The session expired; sign in again.');
  const user = await findUser(deps.store.db, session.user_name);
  if (!user || !isRole(user.role)) throw unauthorized('AUTH_INVALID', 'The session is not valid; sign in again.');
  if (user.disabled_at) throw unauthorized('AUTH_REVOKED', `User ${user.name} is disabled.`);
  if (UNSAFE.has(request.method)) {
    const presented = request.headers[CSRF_HEADER];
    if (typeof presented !== 'string' || !safeEqual(presented, session.csrf_token)) {
      throw new ApiError(
        403,
        'CSRF_INVALID',
        `A change made with a session cookie must carry the session's CSRF token in the ${CSRF_HEADER} header (GET /api/v1/session returns it).`,
      );
    }
  }
  if (now.getTime() - Date.parse(session.last_seen_at) >= TOUCH_INTERVAL_MS) {
    const expires = Math.min(Date.parse(session.created_at) + SESSION_MAX_MS, now.getTime() + SESSION_IDLE_MS);
    await touchSession(deps.store.db, idHash, now.toISOString(), new Date(expires).toISOString());
  }
  return { kind: 'user', name: user.name, role: user.role, sessionHash: idHash, csrfToken: session.csrf_token };
}

/** Who is calling, or why not; undefined when no credential was presented at all. */
export async function identify(deps: ServerDeps, request: FastifyRequest): Promise<Principal | undefined> {
  const now = deps.now();
  const header = request.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const credential = m ? parseCredential(m[1]!) : undefined;
    if (!credential)
      throw unauthorized(
        'AUTH_INVALID',
        'The Authorization header must be "Bearer <token>" with a Patchline API token.',
      );
    return tokenPrincipal(deps, credential.id, credential.secret, now);
  }
  const cookie = request.cookies?.[SESSION_COOKIE];
  if (cookie) return sessionPrincipal(deps, request, cookie, now);
  return undefined;
}

export function registerAuthentication(app: FastifyInstance, deps: ServerDeps): void {
  app.addHook('onRequest', async (request) => {
    // Unknown URLs have no route config: they answer 404 whoever asks (they hold nothing).
    if (!request.routeOptions.url) return;
    if (request.routeOptions.url.startsWith(`${AGENT_API_PREFIX}/`)) return;
    const access = request.routeOptions.config?.access ?? DEFAULT_ACCESS;
    if (access === 'public') return;
    const principal = await identify(deps, request);
    if (!principal)
      throw unauthorized('AUTH_REQUIRED', 'Sign in, or send an API token in "Authorization: Bearer <token>".');
    request.principal = principal;
    if (access === 'agent') throw new ApiError(403, 'FORBIDDEN_ROLE', 'This endpoint is for enrolled agents.');
    if (!roleAllows(principal.role, access)) {
      throw new ApiError(
        403,
        'FORBIDDEN_ROLE',
        `This needs the ${access} role; ${principal.kind === 'user' ? `user ${principal.name}` : `token "${principal.name}"`} has ${principal.role}.`,
      );
    }
  });
}
