/**
 * Additive: every MoreInfoUrl of an update and the CVEs it fixes (x/ CveID), as JSON arrays of
 * strings on catalog_updates. Arrays in a column rather than link tables: they are read only
 * with the update (catalog show, the console's update page), never searched by value here.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('catalog_updates').addColumn('cve_ids', 'text').execute();
  await db.schema.alterTable('catalog_updates').addColumn('more_info_urls', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('catalog_updates').dropColumn('more_info_urls').execute();
  await db.schema.alterTable('catalog_updates').dropColumn('cve_ids').execute();
}
