/**
 * Opens the embedded store: Kysely over better-sqlite3 in WAL mode, migrated to the latest schema.
 *
 * Migrations are plain Kysely schema-builder code (no SQLite-only SQL) so a PostgreSQL dialect can
 * follow (DESIGN.md §9). Every repository takes the `Kysely<Database>` this returns; nothing else
 * opens the file.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Migration, type MigrationProvider } from 'kysely';
import { PatchlineError, EXIT } from '../domain/errors.ts';
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
function withStatementCache(sqlite: BetterSqlite3.Database): { close(): void; prepare(sql: string): BetterSqlite3.Statement } {
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

/** Opens (creating if needed) the SQLite state file and applies pending migrations. */
export async function openStore(file: string): Promise<Store> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
  } catch (cause) {
    throw new PatchlineError('STATE_UNREADABLE', `Cannot open the state file ${file}: ${(cause as Error).message}. Check the path and its permissions, or name another file with --state.`, { cause, exitCode: EXIT.USAGE, context: { file } });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  const migrator = new Migrator({ db, provider: new StaticMigrations(migrations) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new PatchlineError('STATE_MIGRATION_FAILED', `The state file ${file} could not be upgraded (migration ${failed}): ${(error as Error).message}`, { cause: error, exitCode: EXIT.INTERNAL, context: { file } });
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
