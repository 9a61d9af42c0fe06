/** Connector runs: runs, their hosts (cycle state), per-update results and the event log. */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('runs')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('options_json', 'text', (c) => c.notNull())
    .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('finished_at', 'varchar(32)')
    .addColumn('outcome', 'varchar(32)', (c) => c.notNull())
    .addColumn('exit_code', 'integer')
    .execute();
  await db.schema
    .createTable('run_hosts')
    .addColumn('run_id', 'varchar(64)', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('host', 'varchar(255)', (c) => c.notNull())
    .addColumn('ordinal', 'integer', (c) => c.notNull())
    .addColumn('phase', 'varchar(32)', (c) => c.notNull())
    .addColumn('state_json', 'text', (c) => c.notNull())
    .addColumn('cycles', 'integer', (c) => c.notNull())
    .addColumn('reboots', 'integer', (c) => c.notNull())
    .addColumn('message', 'text')
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_hosts_pk', ['run_id', 'host'])
    .execute();
  await db.schema
    .createTable('run_host_updates')
    .addColumn('run_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('host', 'varchar(255)', (c) => c.notNull())
    .addColumn('update_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('kb', 'varchar(16)')
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('result', 'varchar(16)', (c) => c.notNull())
    .addColumn('hresult', 'varchar(10)')
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('cycle', 'integer', (c) => c.notNull())
    .addColumn('message', 'text')
    .addPrimaryKeyConstraint('run_host_updates_pk', ['run_id', 'host', 'update_id'])
    .addForeignKeyConstraint('run_host_updates_host_fk', ['run_id', 'host'], 'run_hosts', ['run_id', 'host'], (c) =>
      c.onDelete('cascade'),
    )
    .execute();
  // Numbered per run by the repository (no autoincrement: SQLite and PostgreSQL spell it differently).
  await db.schema
    .createTable('run_events')
    .addColumn('run_id', 'varchar(64)', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('n', 'integer', (c) => c.notNull())
    .addColumn('host', 'varchar(255)')
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(32)', (c) => c.notNull())
    .addColumn('cycle', 'integer')
    .addColumn('seq', 'integer')
    .addColumn('data_json', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_events_pk', ['run_id', 'n'])
    .execute();
  await db.schema.createIndex('run_events_run_host').on('run_events').columns(['run_id', 'host', 'n']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('run_events').ifExists().execute();
  await db.schema.dropTable('run_host_updates').ifExists().execute();
  await db.schema.dropTable('run_hosts').ifExists().execute();
  await db.schema.dropTable('runs').ifExists().execute();
}
