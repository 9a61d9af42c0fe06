/**
 * The dialect switch: one `openDatabase(location)` for the server and its CLI. A location that
 * starts with `postgres://` or `postgresql://` opens PostgreSQL (pg's Pool, the scale-out store of
 * DESIGN.md §9); anything else is a SQLite file opened by `openStore` (db.ts). Both run the same
 * Kysely migrations, so every repository works on either.
 */
import { Kysely, Migrator, PostgresDialect, type Migration, type MigrationProvider } from 'kysely';
import pg from 'pg';
import type BetterSqlite3 from 'better-sqlite3';
import { EXIT, PatchlineError } from '../domain/errors.ts';
import { openStore } from './db.ts';
import { migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';

export type StoreDialect = 'sqlite' | 'postgres';

export interface Database_ {
  readonly db: Kysely<Database>;
  readonly dialect: StoreDialect;
  /** The location with any password removed, safe to log. */
  readonly display: string;
  /** SQLite only: the raw handle for bulk paths (catalog import). */
  readonly sqlite?: BetterSqlite3.Database;
  close(): Promise<void>;
}

/** Connections per server process; SQLite has one. PostgreSQL's default limit is 100 for all replicas. */
export const POSTGRES_POOL_SIZE = 10;

const PG_INT8_OID = 20;
/**
 * count(*) and bigint columns (file sizes) arrive as strings by default, because int8 may exceed
 * 2^53. Patchline's counts and sizes never do, and SQLite returns numbers: parse them as numbers
 * so repositories see the same types on both dialects.
 */
function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === PG_INT8_OID) return Number;
  return pg.types.getTypeParser(oid, format as 'text') as (value: string) => unknown;
}

class StaticMigrations implements MigrationProvider {
  constructor(private readonly all: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.all;
  }
}

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`. */
export function redactUrl(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const url = new URL(location);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/**
 * Opens the store at a SQLite path or a PostgreSQL URL and migrates it to the latest schema.
 *
 * @example const store = await openDatabase('postgres://patchline@db01/patchline');
 */
export async function openDatabase(location: string): Promise<Database_> {
  if (!isPostgresUrl(location)) {
    const store = await openStore(location);
    return { db: store.db, dialect: 'sqlite', display: location, sqlite: store.sqlite, close: () => store.close() };
  }
  const display = redactUrl(location);
  const pool = new pg.Pool({
    connectionString: location,
    max: POSTGRES_POOL_SIZE,
    types: { getTypeParser: typeParser } as pg.CustomTypesConfig,
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that
  // would crash the process. The next query gets a fresh connection (or a clear error).
  pool.on('error', (error) => process.emitWarning(`PostgreSQL connection lost (${display}): ${error.message}`));
  try {
    const client = await pool.connect();
    client.release();
  } catch (cause) {
    await pool.end();
    throw new PatchlineError(
      'STORE_UNREACHABLE',
      `Cannot connect to PostgreSQL at ${display}: ${(cause as Error).message}. Check the URL, that the server runs and that the user may connect.`,
      { cause, exitCode: EXIT.USAGE, context: { db: display } },
    );
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const migrator = new Migrator({ db, provider: new StaticMigrations(migrations) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new PatchlineError(
      'STATE_MIGRATION_FAILED',
      `The database ${display} could not be upgraded (migration ${failed}): ${(error as Error).message}`,
      { cause: error, exitCode: EXIT.INTERNAL, context: { db: display } },
    );
  }
  let closed: Promise<void> | undefined;
  return {
    db,
    dialect: 'postgres',
    display,
    close() {
      closed ??= db.destroy();
      return closed;
    },
  };
}
