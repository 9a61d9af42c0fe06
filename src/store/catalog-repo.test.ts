/**
 * The SQLite catalog writer's bulk mode against a real store: an import enlarges the page cache
 * while it runs and gives the connection back the size the store chose (db.ts), not SQLite's
 * 2 MB default — the server keeps serving its fleet from that same connection after a sync.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from './db.ts';
import { sqliteCatalogWriter } from './catalog-repo.ts';

test('bulk mode enlarges the page cache for an import, then restores the store’s own size', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-cache-'));
  const store = await openStore(join(dir, 'state.sqlite'));
  try {
    const sqlite = store.sqlite!;
    const cacheSize = (): number => sqlite.pragma('cache_size', { simple: true }) as number;
    const own = cacheSize();
    assert.ok(own < -2000, `the store sets a page cache larger than SQLite's 2 MB default (cache_size ${own})`);
    const writer = sqliteCatalogWriter(sqlite);
    writer.bulkMode(true);
    const bulk = cacheSize();
    assert.ok(bulk < own, `an import gets a larger cache (${bulk} against ${own})`);
    writer.bulkMode(true); // an importer that turns it on twice still restores the store's size
    writer.bulkMode(false);
    assert.equal(cacheSize(), own);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
