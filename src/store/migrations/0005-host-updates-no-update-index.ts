/**
 * Drops host_updates' (update_id, applicability) index. No query reads host_updates by update
 * alone: the policy, the grids and the gateway read a host's rows by its key (the primary key's
 * prefix) or the whole table, and per-update counts are computed in memory (fleet-cache.ts). The
 * index only cost writes: each host's first report put 150 entries at 150 random places of it,
 * which made a new inventory cost SQLite about 3.7 ms of CPU instead of 1.0 ms (2,000 hosts;
 * docs/decisions.md, "Report ingestion").
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('host_updates_update').ifExists().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('host_updates_update')
    .on('host_updates')
    .columns(['update_id', 'applicability'])
    .execute();
}
