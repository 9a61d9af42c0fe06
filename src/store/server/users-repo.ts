/** Users of the console and the API (name, role, scrypt hash). Functions take a Kysely or a transaction. */
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import type { UsersTable } from '../schema-server.ts';

export type UserRow = UsersTable;

export async function insertUser(db: Kysely<Database>, row: UserRow): Promise<void> {
  await db.insertInto('users').values(row).execute();
}

/** Names are case-insensitive identities: `Alice` and `alice` are one user. */
export async function findUser(db: Kysely<Database>, name: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('name', '=', name.toLowerCase()).executeTakeFirst();
}

export async function listUsers(db: Kysely<Database>): Promise<UserRow[]> {
  return db.selectFrom('users').selectAll().orderBy('name').execute();
}

export async function updateUser(
  db: Kysely<Database>,
  name: string,
  changes: Partial<Pick<UserRow, 'role' | 'password_hash' | 'disabled_at'>>,
): Promise<boolean> {
  const r = await db.updateTable('users').set(changes).where('name', '=', name.toLowerCase()).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function deleteUser(db: Kysely<Database>, name: string): Promise<boolean> {
  const r = await db.deleteFrom('users').where('name', '=', name.toLowerCase()).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Enabled admins: the last one may not be removed, demoted or disabled (nobody could fix that). */
export async function countActiveAdmins(db: Kysely<Database>): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '=', 'admin')
    .where('disabled_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
