/**
 * The catalog's tables (see schema-catalog.ts). Schema builder only, so a PostgreSQL dialect can
 * run the same migration; the one SQLite-only piece, the FTS5 title index, is created only when
 * the dialect is SQLite (PostgreSQL falls back to LIKE in src/catalog/query.ts).
 *
 * The link tables are keyed by their natural composite key and, on SQLite, stored WITHOUT ROWID:
 * one B-tree per table instead of a rowid table plus an index, which is a third less work for
 * the ~1.5 million link rows of a real catalog import.
 *
 * No foreign keys from the per-version tables to catalog_versions: the bulk import writes
 * millions of rows and deletes whole versions explicitly, and a per-row FK check would cost time
 * for nothing.
 */
import { SqliteAdapter, sql, type CreateTableBuilder, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('catalog_versions')
    .addColumn('id', isSqlite(db) ? 'integer' : 'serial', (c) =>
      isSqlite(db) ? c.primaryKey().autoIncrement() : c.primaryKey(),
    )
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text')
    .addColumn('creation_date', 'text')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('signer_subject', 'text')
    .addColumn('importer', 'text')
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('imported_at', 'text')
    .addColumn('updates_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('files_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('shards_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('catalog_updates')
    // A plain rowid key, not AUTOINCREMENT: that would touch sqlite_sequence on every one of
    // ~350 000 inserts. Ids of a deleted version may be reused; nothing keeps them but the FTS
    // index, whose rows are deleted with the version.
    .addColumn('id', isSqlite(db) ? 'integer' : 'serial', (c) => c.primaryKey())
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('revision_id', 'integer', (c) => c.notNull())
    .addColumn('update_id', 'text', (c) => c.notNull())
    .addColumn('revision_number', 'integer', (c) => c.notNull())
    .addColumn('creation_date', 'text')
    .addColumn('default_language', 'text')
    .addColumn('is_bundle', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_leaf', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('deployment_action', 'text')
    .addColumn('update_type', 'text')
    .addColumn('title', 'text')
    .addColumn('description', 'text')
    .addColumn('kb', 'text')
    .addColumn('msrc_severity', 'text')
    .addColumn('security_bulletin_id', 'text')
    .addColumn('reboot_behavior', 'text')
    .addColumn('impact', 'text')
    .addColumn('release_date', 'text')
    .addColumn('support_url', 'text')
    .addColumn('more_info_url', 'text')
    .addColumn('max_download_size', bigInteger(db))
    .addColumn('browse_only', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex('catalog_updates_rev')
    .unique()
    .on('catalog_updates')
    .columns(['version_id', 'revision_id'])
    .execute();
  await db.schema
    .createIndex('catalog_updates_uid')
    .on('catalog_updates')
    .columns(['version_id', 'update_id'])
    .execute();
  await db.schema.createIndex('catalog_updates_kb').on('catalog_updates').columns(['version_id', 'kb']).execute();

  await db.schema
    .createTable('catalog_update_categories')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('revision_id', 'integer', (c) => c.notNull())
    .addColumn('category_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('catalog_update_categories_pk', ['version_id', 'revision_id', 'category_id'])
    .$call(withoutRowid(db))
    .execute();

  await db.schema
    .createTable('catalog_categories')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('category_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addPrimaryKeyConstraint('catalog_categories_pk', ['version_id', 'category_id'])
    .$call(withoutRowid(db))
    .execute();

  await db.schema
    .createTable('catalog_prerequisites')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('revision_id', 'integer', (c) => c.notNull())
    .addColumn('or_group', 'integer')
    .addColumn('prerequisite_update_id', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('catalog_prerequisites_rev')
    .on('catalog_prerequisites')
    .columns(['version_id', 'revision_id'])
    .execute();

  await db.schema
    .createTable('catalog_bundles')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('member_revision_id', 'integer', (c) => c.notNull())
    .addColumn('bundle_revision_id', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('catalog_bundles_pk', ['version_id', 'member_revision_id', 'bundle_revision_id'])
    .$call(withoutRowid(db))
    .execute();
  await db.schema
    .createIndex('catalog_bundles_bundle')
    .on('catalog_bundles')
    .columns(['version_id', 'bundle_revision_id'])
    .execute();

  await db.schema
    .createTable('catalog_supersedence')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('revision_id', 'integer', (c) => c.notNull())
    .addColumn('superseding_revision_id', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('catalog_supersedence_pk', ['version_id', 'revision_id', 'superseding_revision_id'])
    .$call(withoutRowid(db))
    .execute();
  await db.schema
    .createIndex('catalog_supersedence_new')
    .on('catalog_supersedence')
    .columns(['version_id', 'superseding_revision_id'])
    .execute();

  await db.schema
    .createTable('catalog_update_files')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('revision_id', 'integer', (c) => c.notNull())
    .addColumn('file_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('catalog_update_files_pk', ['version_id', 'revision_id', 'file_id'])
    .$call(withoutRowid(db))
    .execute();

  await db.schema
    .createTable('catalog_files')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('file_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('is_included', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('file_name', 'text')
    .addColumn('size', bigInteger(db))
    .addColumn('sha256', 'text')
    .addPrimaryKeyConstraint('catalog_files_pk', ['version_id', 'file_id'])
    .$call(withoutRowid(db))
    .execute();

  await db.schema
    .createTable('catalog_titles')
    .addColumn('version_id', 'integer', (c) => c.notNull())
    .addColumn('revision_id', 'integer', (c) => c.notNull())
    .addColumn('language', 'text', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('description', 'text')
    .addPrimaryKeyConstraint('catalog_titles_pk', ['version_id', 'revision_id', 'language'])
    .$call(withoutRowid(db))
    .execute();

  if (isSqlite(db)) {
    // rowid = catalog_updates.id; holds its own copy of the title so a version's rows can be
    // deleted by rowid without the external-content bookkeeping.
    await sql`CREATE VIRTUAL TABLE catalog_updates_fts USING fts5(title, tokenize = 'unicode61')`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (isSqlite(db)) await sql`DROP TABLE IF EXISTS catalog_updates_fts`.execute(db);
  for (const table of [
    'catalog_titles',
    'catalog_files',
    'catalog_update_files',
    'catalog_supersedence',
    'catalog_bundles',
    'catalog_prerequisites',
    'catalog_categories',
    'catalog_update_categories',
    'catalog_updates',
    'catalog_versions',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}

/** SQLite: store the table in its primary-key B-tree (WITHOUT ROWID); other dialects: as is. */
function withoutRowid(db: Kysely<unknown>) {
  return <T extends CreateTableBuilder<string, never>>(builder: T): T =>
    isSqlite(db) ? (builder.modifyEnd(sql`without rowid`) as T) : builder;
}

/** File sizes pass 2 GiB: PostgreSQL's integer is 32-bit; SQLite's INTEGER holds 64 bits already. */
function bigInteger(db: Kysely<unknown>): 'integer' | 'bigint' {
  return isSqlite(db) ? 'integer' : 'bigint';
}

function isSqlite(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof SqliteAdapter;
}
