/**
 * The two stores a store-level test runs on (STYLE.md §9: interchangeable parts pass one suite):
 * `for (const kind of STORE_KINDS) test(`… [${kind}]`, { skip: storeSkip(kind) }, …)`, with
 * `freshLocation(kind)` giving a new SQLite file or a new PostgreSQL database (postgres.ts) to
 * open with openDatabase. PostgreSQL skips with the reason only outside CI.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, postgresUnavailable } from './postgres.ts';

export type StoreKind = 'sqlite' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'postgres'];

/** Why a test on this store cannot run here (PostgreSQL not installed), or undefined. Throws under CI. */
export function storeSkip(kind: StoreKind): string | undefined {
  return kind === 'postgres' ? postgresUnavailable() : undefined;
}

/** A fresh store location of that kind; temp dirs are removed at exit. */
export async function freshLocation(kind: StoreKind): Promise<string> {
  if (kind === 'postgres') return freshPostgresDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'patchline-store-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'server.sqlite');
}
