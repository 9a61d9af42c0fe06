/**
 * The fleet server's tables (see schema-server.ts): people and credentials (users, sessions, API
 * tokens, enrollment tokens), the fleet (hosts, per host × update state), policy input (rules,
 * rings), actions and their per-host progress, the audit log, the events outbox and settings.
 *
 * Schema builder only, so SQLite and PostgreSQL run the same migration. Times are ISO-8601 text
 * (as in the runs tables), booleans are integers 0/1, and the two append-only logs (audit,
 * events) get an auto-assigned id: INTEGER PRIMARY KEY on SQLite, serial on PostgreSQL.
 */
import { SqliteAdapter, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  const autoId = sqlite ? 'integer' : 'bigserial';

  await db.schema
    .createTable('server_settings')
    .addColumn('key', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('disabled_at', 'varchar(32)')
    .execute();

  // The session id itself is never stored: only its SHA-256, so a copy of the database logs no one in.
  await db.schema
    .createTable('sessions')
    .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_name', 'varchar(64)', (c) => c.notNull().references('users.name').onDelete('cascade'))
    .addColumn('csrf_token', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_seen_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('ip', 'varchar(64)')
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_name').execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(128)', (c) => c.notNull())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)')
    .addColumn('last_used_at', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .execute();

  await db.schema
    .createTable('enroll_tokens')
    .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('ring', 'varchar(64)', (c) => c.notNull())
    .addColumn('single_use', 'integer', (c) => c.notNull())
    .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_used_at', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .execute();
  // Agents present only the secret: it is looked up by its hash.
  await db.schema.createIndex('enroll_tokens_secret').on('enroll_tokens').column('secret_hash').unique().execute();

  // `key` is the lower-cased host name (Windows names are case-insensitive); `name` as enrolled;
  // `id` the host id inside the agent's credential (plh1.<id>.<secret>), new at each enrollment.
  await db.schema
    .createTable('hosts')
    .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
    .addColumn('id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('ring', 'varchar(64)')
    .addColumn('credential_hash', 'varchar(64)')
    .addColumn('agent_version', 'varchar(64)')
    .addColumn('boot_id', 'varchar(64)')
    .addColumn('enrolled_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('enroll_token_id', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .addColumn('last_seen_at', 'varchar(32)')
    .addColumn('online_until', 'varchar(32)')
    .addColumn('last_scan_at', 'varchar(32)')
    .addColumn('reboot_pending', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('facts_json', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('report_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  // Applicability, decision and delivery kept apart (DESIGN.md §8); WAPT/WSUS states derive from them.
  await db.schema
    .createTable('host_updates')
    .addColumn('host_key', 'varchar(255)', (c) => c.notNull().references('hosts.key').onDelete('cascade'))
    .addColumn('update_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('revision', 'integer')
    .addColumn('kb', 'varchar(16)')
    .addColumn('title', 'text')
    .addColumn('applicability', 'varchar(24)', (c) => c.notNull())
    .addColumn('delivery', 'varchar(24)', (c) => c.notNull())
    .addColumn('decision', 'varchar(16)')
    .addColumn('decided_by', 'text')
    .addColumn('deferred_until', 'varchar(32)')
    .addColumn('hresult', 'varchar(10)')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_attempt_at', 'varchar(32)')
    .addColumn('installed_at', 'varchar(32)')
    .addColumn('reported_at', 'varchar(32)', (c) => c.notNull())
    // The update as the agent last reported it (agent protocol ReportedUpdate), for delta reports.
    .addColumn('report_json', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('host_updates_pk', ['host_key', 'update_id'])
    .execute();
  await db.schema
    .createIndex('host_updates_update')
    .on('host_updates')
    .columns(['update_id', 'applicability'])
    .execute();

  await db.schema
    .createTable('rules')
    .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('action', 'varchar(8)', (c) => c.notNull())
    .addColumn('spec_json', 'text', (c) => c.notNull())
    .addColumn('comment', 'text')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('rings')
    .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('spec_json', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_by', 'varchar(128)', (c) => c.notNull())
    .execute();

  // An admin's hand promotion or halt of an update into a ring (the policy reads these).
  await db.schema
    .createTable('promotion_overrides')
    .addColumn('update_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('ring', 'varchar(64)', (c) => c.notNull())
    .addColumn('action', 'varchar(8)', (c) => c.notNull())
    .addColumn('by', 'varchar(160)', (c) => c.notNull())
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('promotion_overrides_pk', ['update_id', 'ring'])
    .execute();

  await db.schema
    .createTable('actions')
    .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('target_json', 'text', (c) => c.notNull())
    .addColumn('update_ids_json', 'text')
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
    .addColumn('finished_at', 'varchar(32)')
    .execute();
  await db.schema.createIndex('actions_created').on('actions').column('created_at').execute();

  await db.schema
    .createTable('action_hosts')
    .addColumn('action_id', 'varchar(32)', (c) => c.notNull().references('actions.id').onDelete('cascade'))
    .addColumn('host_key', 'varchar(255)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('phase', 'varchar(16)')
    .addColumn('percent', 'real')
    .addColumn('hresult', 'varchar(10)')
    .addColumn('message', 'text')
    .addColumn('progress_json', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('action_hosts_pk', ['action_id', 'host_key'])
    .execute();
  await db.schema.createIndex('action_hosts_host').on('action_hosts').columns(['host_key', 'state']).execute();

  await db.schema
    .createTable('audit')
    .addColumn('id', autoId, (c) => c.primaryKey())
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('actor', 'varchar(160)', (c) => c.notNull())
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('target', 'varchar(255)')
    .addColumn('details_json', 'text', (c) => c.notNull())
    .addColumn('ip', 'varchar(64)')
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('id', autoId, (c) => c.primaryKey())
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(64)', (c) => c.notNull())
    .addColumn('data_json', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'events',
    'audit',
    'action_hosts',
    'actions',
    'promotion_overrides',
    'rings',
    'rules',
    'host_updates',
    'hosts',
    'enroll_tokens',
    'api_tokens',
    'sessions',
    'users',
    'server_settings',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
