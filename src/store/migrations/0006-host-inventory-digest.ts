/**
 * Additive: hosts.inventory_digest, the digest of the full report whose rows host_updates holds
 * (null: unknown). Most full reports repeat the host's last one; with the digest the gateway
 * acknowledges such a report without reading the host's 150 rows to compare them one by one
 * (docs/decisions.md, "Report ingestion"). Null on existing hosts: their next full report takes
 * the comparing path once and records it.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('hosts').addColumn('inventory_digest', 'varchar(64)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('hosts').dropColumn('inventory_digest').execute();
}
