/**
 * Opens the embedded store: Kysely over better-sqlite3 in WAL mode, migrated to the latest schema.
 *
 * Migrations are plain Kysely schema-builder code (no SQLite-only SQL) so a PostgreSQL dialect can
 * follow (DESIGN.md §9). Every repository takes the `Kysely<Database>` this returns; nothing else
 * opens the file.
 *
 * Many connector processes share one state file (a scheduler starts one job per server, all at
 * the same second), so: a busy timeout; write transactions that take the write lock when they
 * begin (`BEGIN IMMEDIATE` — a deferred transaction that reads first and then writes gets
 * SQLITE_BUSY at once, without waiting, when another process wrote in between); migrations run
 * under that lock, so a second migrator waits and then finds nothing left to do; and
 * `retryBusy` for a transaction that still finds the file locked.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  Migrator,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type Migration,
  type MigrationProvider,
  type SqliteDialectConfig,
} from 'kysely';
import { PatchlineError, EXIT } from '../domain/errors.ts';
import { BUSY_TIMEOUT_MS, retryBusy } from './busy.ts';
import { migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';

export interface Store {
  readonly db: Kysely<Database>;
  /** The raw connection, for bulk paths that need prepared statements (catalog import). */
  readonly sqlite: BetterSqlite3.Database;
  readonly file: string;
  close(): Promise<void>;
}

class StaticMigrations implements MigrationProvider {
  constructor(private readonly all: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.all;
  }
}

/** Prepared statements kept per connection; the engine issues a few dozen distinct queries. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query afresh; better-sqlite3 statements are reusable, and preparing was
 * about 6 % of the connector's CPU in a 500-host run. Cache them by SQL text.
 */
function withStatementCache(sqlite: BetterSqlite3.Database): {
  close(): void;
  prepare(sql: string): BetterSqlite3.Statement;
} {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql) {
      let statement = cache.get(sql);
      if (statement === undefined) {
        statement = sqlite.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}

/**
 * Kysely's SQLite driver opens transactions with a plain (deferred) BEGIN. Ours take the write lock
 * at once, so two connector processes queue on the busy timeout instead of failing.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly settings: SqliteDialectConfig) {
    super(settings);
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.settings);
  }
}

/** True when every migration is already recorded (the common case: no lock needed). */
function upToDate(sqlite: BetterSqlite3.Database): boolean {
  const table = sqlite.prepare("select 1 from sqlite_master where type = 'table' and name = 'kysely_migration'").get();
  if (table === undefined) return false;
  const done = new Set(
    (sqlite.prepare('select name from kysely_migration').all() as { name: string }[]).map((r) => r.name),
  );
  return Object.keys(migrations).every((name) => done.has(name));
}

/**
 * Applies pending migrations inside one write transaction: a concurrent migrator waits for it,
 * then sees them recorded and does nothing; a migration that fails leaves the file as it was.
 * (Kysely's migrator takes no lock on SQLite and does not wrap DDL in a transaction there.)
 */
async function migrate(db: Kysely<Database>, sqlite: BetterSqlite3.Database, file: string): Promise<void> {
  if (upToDate(sqlite)) return;
  await retryBusy(async () => sqlite.exec('BEGIN IMMEDIATE'));
  let outcome: Awaited<ReturnType<Migrator['migrateToLatest']>>;
  try {
    outcome = await new Migrator({ db, provider: new StaticMigrations(migrations) }).migrateToLatest();
  } catch (error) {
    sqlite.exec('ROLLBACK');
    throw error;
  }
  if (outcome.error) {
    if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
    const failed = outcome.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new PatchlineError(
      'STATE_MIGRATION_FAILED',
      `The state file ${file} could not be upgraded (migration ${failed}): ${(outcome.error as Error).message}. Nothing was changed.`,
      { cause: outcome.error, exitCode: EXIT.INTERNAL, context: { file } },
    );
  }
  sqlite.exec('COMMIT');
}

/**
 * SQLite's page cache per connection (its default is 2 MB). A server's fleet tables outgrow that at
 * a few hundred hosts; with 16 MB, the B-tree pages a report's upsert and the policy's reads touch
 * stay in memory instead of being read again through the OS (bench:server-fleet, 10,000 agents).
 */
const PAGE_CACHE_KIB = 16 * 1024;

/** Opens (creating if needed) the SQLite state file and applies pending migrations. */
export async function openStore(file: string): Promise<Store> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(file, { timeout: BUSY_TIMEOUT_MS });
    // Switching a fresh file to WAL needs a moment of exclusive access: another process may hold it.
    await retryBusy(async () => sqlite.pragma('journal_mode = WAL'));
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  } catch (cause) {
    throw new PatchlineError(
      'STATE_UNREADABLE',
      `Cannot open the state file ${file}: ${(cause as Error).message}. Check the path and its permissions, or name another file with --state.`,
      { cause, exitCode: EXIT.USAGE, context: { file } },
    );
  }
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }) });
  try {
    await migrate(db, sqlite, file);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  let closed = false;
  return {
    db,
    sqlite,
    file,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
