/**
 * Users, API tokens and enrollment tokens: the operations shared by the API routes and the
 * `patchline server …` commands, so a change made from either is validated, hashed and audited
 * the same way. Secrets are returned once, to the caller, and never stored.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import {
  insertApiToken,
  insertEnrollToken,
  deleteUserSessions,
  findApiTokens,
  revokeApiToken,
  revokeEnrollToken,
  findEnrollToken,
} from '../store/server/credentials-repo.ts';
import { countActiveAdmins, deleteUser, findUser, insertUser, updateUser } from '../store/server/users-repo.ts';
import { commitChange, type Actor } from './changes.ts';
import { ApiError, badRequest, conflict, notFound } from './errors.ts';
import { encodeEnrollToken, tokenSecretHash } from '../domain/agent-protocol.ts';
import { hashPassword, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS } from './auth/password.ts';
import { isRole, type Role } from './auth/roles.ts';
import { newCredential, newId, newSecret } from './auth/secrets.ts';

export interface AccountDeps {
  readonly store: { readonly db: Kysely<Database> };
  readonly now: () => Date;
  readonly feed?: { notify(): void };
}

export const USER_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const RING_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** An enrollment token lives at most this long: it is a secret that travels by hand. */
export const MAX_ENROLL_TOKEN_HOURS = 90 * 24;

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_CHARS)
    throw badRequest('PASSWORD_TOO_SHORT', `A password needs at least ${MIN_PASSWORD_CHARS} characters.`);
  if (password.length > MAX_PASSWORD_CHARS)
    throw badRequest('PASSWORD_TOO_LONG', `A password may have at most ${MAX_PASSWORD_CHARS} characters.`);
}

function checkRole(role: string): asserts role is Role {
  if (!isRole(role))
    throw badRequest('ROLE_INVALID', `Unknown role ${JSON.stringify(role)}: use viewer, operator or admin.`);
}

export interface UserView {
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly disabled: boolean;
}

export async function createUser(
  deps: AccountDeps,
  who: Actor,
  input: { name: string; role: string; password: string },
): Promise<UserView> {
  const name = input.name.trim().toLowerCase();
  if (!USER_NAME_RE.test(name))
    throw badRequest(
      'USER_NAME_INVALID',
      `User name ${JSON.stringify(input.name)}: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit.`,
    );
  checkRole(input.role);
  checkPassword(input.password);
  const passwordHash = await hashPassword(input.password);
  const at = deps.now().toISOString();
  return commitChange(deps, who, async (trx, record) => {
    if (await findUser(trx, name)) throw conflict('USER_EXISTS', `User ${name} already exists.`);
    await insertUser(trx, {
      name,
      role: input.role,
      password_hash: passwordHash,
      created_at: at,
      created_by: who.actor,
      disabled_at: null,
    });
    await record({ action: 'user.create', target: name, details: { role: input.role } });
    return { name, role: input.role as Role, createdAt: at, createdBy: who.actor, disabled: false };
  });
}

export async function changeUser(
  deps: AccountDeps,
  who: Actor,
  nameIn: string,
  input: { role?: string; password?: string; disabled?: boolean },
): Promise<UserView> {
  const name = nameIn.toLowerCase();
  if (input.role !== undefined) checkRole(input.role);
  if (input.password !== undefined) checkPassword(input.password);
  const passwordHash = input.password === undefined ? undefined : await hashPassword(input.password);
  return commitChange(deps, who, async (trx, record) => {
    const user = await findUser(trx, name);
    if (!user) throw notFound('USER_NOT_FOUND', `No user ${name}.`);
    const losesAdmin =
      user.role === 'admin' &&
      !user.disabled_at &&
      ((input.role !== undefined && input.role !== 'admin') || input.disabled === true);
    if (losesAdmin && (await countActiveAdmins(trx)) <= 1)
      throw conflict('LAST_ADMIN', `${name} is the last enabled admin; make another admin first.`);
    const disabledAt =
      input.disabled === undefined
        ? user.disabled_at
        : input.disabled
          ? (user.disabled_at ?? deps.now().toISOString())
          : null;
    await updateUser(trx, name, {
      role: input.role ?? user.role,
      password_hash: passwordHash ?? user.password_hash,
      disabled_at: disabledAt,
    });
    // A new password, role or a disable ends every open session of the user at once.
    await deleteUserSessions(trx, name);
    const changed = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
    await record({
      action: 'user.update',
      target: name,
      details: {
        changed,
        ...(input.role ? { role: input.role } : {}),
        ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
      },
    });
    return {
      name,
      role: (input.role ?? user.role) as Role,
      createdAt: user.created_at,
      createdBy: user.created_by,
      disabled: disabledAt !== null,
    };
  });
}

export async function removeUser(deps: AccountDeps, who: Actor, nameIn: string): Promise<void> {
  const name = nameIn.toLowerCase();
  await commitChange(deps, who, async (trx, record) => {
    const user = await findUser(trx, name);
    if (!user) throw notFound('USER_NOT_FOUND', `No user ${name}.`);
    if (user.role === 'admin' && !user.disabled_at && (await countActiveAdmins(trx)) <= 1)
      throw conflict('LAST_ADMIN', `${name} is the last enabled admin; make another admin first.`);
    await deleteUserSessions(trx, name);
    await deleteUser(trx, name);
    await record({ action: 'user.delete', target: name });
  });
}

// ------------------------------------------------------------------------------ API tokens

export interface TokenView {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt: string | null;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

export async function createApiToken(
  deps: AccountDeps,
  who: Actor,
  input: { name: string; role: string; expiresInDays?: number },
): Promise<TokenView & { token: string }> {
  const name = input.name.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$/.test(name))
    throw badRequest(
      'TOKEN_NAME_INVALID',
      `Token name ${JSON.stringify(input.name)}: use 1-128 letters, digits, spaces, ".", "_" or "-".`,
    );
  checkRole(input.role);
  const now = deps.now();
  const expiresAt =
    input.expiresInDays === undefined ? null : new Date(now.getTime() + input.expiresInDays * 86_400_000).toISOString();
  const credential = newCredential('plt');
  return commitChange(deps, who, async (trx, record) => {
    await insertApiToken(trx, {
      id: credential.id,
      name,
      role: input.role,
      secret_hash: credential.hash,
      created_at: now.toISOString(),
      created_by: who.actor,
      expires_at: expiresAt,
      last_used_at: null,
      revoked_at: null,
    });
    await record({ action: 'token.create', target: credential.id, details: { name, role: input.role, expiresAt } });
    return {
      id: credential.id,
      name,
      role: input.role as Role,
      createdAt: now.toISOString(),
      createdBy: who.actor,
      expiresAt,
      lastUsedAt: null,
      revokedAt: null,
      token: credential.text,
    };
  });
}

/** Revokes by id, or by name when exactly one live token has it (the CLI's `token revoke NAME`). */
export async function revokeToken(
  deps: AccountDeps,
  who: Actor,
  idOrName: string,
): Promise<{ id: string; name: string }> {
  return commitChange(deps, who, async (trx, record) => {
    const live = (await findApiTokens(trx, idOrName)).filter((t) => t.revoked_at === null);
    if (live.length === 0)
      throw notFound('TOKEN_NOT_FOUND', `No live API token with id or name ${JSON.stringify(idOrName)}.`);
    if (live.length > 1)
      throw conflict(
        'TOKEN_AMBIGUOUS',
        `${live.length} live tokens are named ${JSON.stringify(idOrName)}; revoke by id (${live.map((t) => t.id).join(', ')}).`,
      );
    const token = live[0]!;
    await revokeApiToken(trx, token.id, deps.now().toISOString());
    await record({ action: 'token.revoke', target: token.id, details: { name: token.name } });
    return { id: token.id, name: token.name };
  });
}

// ------------------------------------------------------------------------------ enrollment tokens

export interface EnrollTokenView {
  readonly id: string;
  readonly ring: string;
  readonly singleUse: boolean;
  readonly uses: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

export async function createEnrollToken(
  deps: AccountDeps,
  who: Actor,
  input: { ring: string; expiresInHours: number; singleUse: boolean; fingerprint: string | null },
): Promise<EnrollTokenView & { token: string }> {
  if (!RING_NAME_RE.test(input.ring))
    throw badRequest(
      'RING_NAME_INVALID',
      `Ring name ${JSON.stringify(input.ring)}: use 1-63 lower-case letters, digits, "-" or "_".`,
    );
  if (
    !Number.isFinite(input.expiresInHours) ||
    input.expiresInHours <= 0 ||
    input.expiresInHours > MAX_ENROLL_TOKEN_HOURS
  ) {
    throw badRequest(
      'ENROLL_TOKEN_EXPIRY_INVALID',
      `An enrollment token expires after more than 0 and at most ${MAX_ENROLL_TOKEN_HOURS} hours (90 days).`,
    );
  }
  const now = deps.now();
  const id = newId();
  const secret = newSecret();
  const expiresAt = new Date(now.getTime() + input.expiresInHours * 3_600_000).toISOString();
  return commitChange(deps, who, async (trx, record) => {
    await insertEnrollToken(trx, {
      id,
      secret_hash: tokenSecretHash(secret),
      ring: input.ring,
      single_use: input.singleUse ? 1 : 0,
      uses: 0,
      created_at: now.toISOString(),
      created_by: who.actor,
      expires_at: expiresAt,
      last_used_at: null,
      revoked_at: null,
    });
    await record({
      action: 'enroll-token.create',
      target: id,
      details: { ring: input.ring, expiresAt, singleUse: input.singleUse },
    });
    return {
      id,
      ring: input.ring,
      singleUse: input.singleUse,
      uses: 0,
      createdAt: now.toISOString(),
      createdBy: who.actor,
      expiresAt,
      lastUsedAt: null,
      revokedAt: null,
      token: encodeEnrollToken({ secret, fingerprint: input.fingerprint }),
    };
  });
}

export async function revokeEnrollTokenById(deps: AccountDeps, who: Actor, id: string): Promise<void> {
  await commitChange(deps, who, async (trx, record) => {
    const row = await findEnrollToken(trx, id);
    if (!row) throw notFound('ENROLL_TOKEN_NOT_FOUND', `No enrollment token ${id}.`);
    if (!(await revokeEnrollToken(trx, id, deps.now().toISOString())))
      throw conflict('ENROLL_TOKEN_REVOKED', `Enrollment token ${id} is already revoked.`);
    await record({ action: 'enroll-token.revoke', target: id, details: { ring: row.ring } });
  });
}

export { ApiError };
