/**
 * Sessions, API tokens and enrollment tokens: rows keyed by a public id (or, for sessions, the
 * hash of the cookie) holding only the SHA-256 of the secret. Functions take a Kysely or a
 * transaction.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import type { ApiTokensTable, EnrollTokensTable, SessionsTable } from '../schema-server.ts';

export type SessionRow = SessionsTable;
export type ApiTokenRow = ApiTokensTable;
export type EnrollTokenRow = EnrollTokensTable;

// ------------------------------------------------------------------------------ sessions

export async function insertSession(db: Kysely<Database>, row: SessionRow): Promise<void> {
  await db.insertInto('sessions').values(row).execute();
}

export async function findSession(db: Kysely<Database>, idHash: string): Promise<SessionRow | undefined> {
  return db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
}

export async function touchSession(
  db: Kysely<Database>,
  idHash: string,
  lastSeenAt: string,
  expiresAt: string,
): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ last_seen_at: lastSeenAt, expires_at: expiresAt })
    .where('id_hash', '=', idHash)
    .execute();
}

export async function deleteSession(db: Kysely<Database>, idHash: string): Promise<void> {
  await db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
}

/** Ends every session of a user (password change, role change, disable, delete). */
export async function deleteUserSessions(db: Kysely<Database>, userName: string): Promise<void> {
  await db.deleteFrom('sessions').where('user_name', '=', userName).execute();
}

export async function deleteExpiredSessions(db: Kysely<Database>, now: string): Promise<number> {
  const r = await db.deleteFrom('sessions').where('expires_at', '<', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}

// ------------------------------------------------------------------------------ API tokens

export async function insertApiToken(db: Kysely<Database>, row: ApiTokenRow): Promise<void> {
  await db.insertInto('api_tokens').values(row).execute();
}

export async function findApiToken(db: Kysely<Database>, id: string): Promise<ApiTokenRow | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Tokens by id or by name (the CLI revokes by name). */
export async function findApiTokens(db: Kysely<Database>, idOrName: string): Promise<ApiTokenRow[]> {
  return db
    .selectFrom('api_tokens')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
    .execute();
}

export async function listApiTokens(db: Kysely<Database>): Promise<ApiTokenRow[]> {
  return db.selectFrom('api_tokens').selectAll().orderBy('created_at').orderBy('id').execute();
}

export async function revokeApiToken(db: Kysely<Database>, id: string, at: string): Promise<boolean> {
  const r = await db
    .updateTable('api_tokens')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function touchApiToken(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}

// ------------------------------------------------------------------------------ enrollment tokens

export async function insertEnrollToken(db: Kysely<Database>, row: EnrollTokenRow): Promise<void> {
  await db.insertInto('enroll_tokens').values(row).execute();
}

export async function findEnrollToken(db: Kysely<Database>, id: string): Promise<EnrollTokenRow | undefined> {
  return db.selectFrom('enroll_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listEnrollTokens(db: Kysely<Database>): Promise<EnrollTokenRow[]> {
  return db.selectFrom('enroll_tokens').selectAll().orderBy('created_at').orderBy('id').execute();
}

export async function revokeEnrollToken(db: Kysely<Database>, id: string, at: string): Promise<boolean> {
  const r = await db
    .updateTable('enroll_tokens')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Counts one use. A single-use token is consumed only if still unused: the conditional UPDATE
 * makes two agents racing with one token end with exactly one enrolled (on both dialects).
 */
export async function consumeEnrollToken(db: Kysely<Database>, id: string, at: string): Promise<boolean> {
  const r = await db
    .updateTable('enroll_tokens')
    .set((eb) => ({ uses: eb('uses', '+', 1), last_used_at: at }))
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', at)
    .where((eb) => eb.or([eb('single_use', '=', 0), eb('uses', '=', 0)]))
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}
