/** Small server-wide values kept in the store (e.g. the TLS fingerprint the CLI puts in enrollment tokens). */
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';

export const SETTING = {
  /** Hex SHA-256 of the certificate the server serves; '' when it serves plain HTTP. */
  tlsFingerprint: 'tls.fingerprint',
} as const;

export async function getSetting(db: Kysely<Database>, key: string): Promise<string | undefined> {
  const r = await db.selectFrom('server_settings').select('value').where('key', '=', key).executeTakeFirst();
  return r?.value;
}

export async function putSetting(db: Kysely<Database>, key: string, value: string, at: string): Promise<void> {
  await db
    .insertInto('server_settings')
    .values({ key, value, updated_at: at })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at }))
    .execute();
}
