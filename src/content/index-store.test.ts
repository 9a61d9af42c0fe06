/** The cache's metadata index: found by either digest, and the JSON file survives a restart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonFileContentIndex, memoryContentIndex, type ContentRecord } from './index-store.ts';

const rec: ContentRecord = {
  key: 'b'.repeat(64),
  sha1: 'a'.repeat(40),
  sha256: 'b'.repeat(64),
  size: 3,
  url: 'http://u/x',
  fileName: 'x',
  cachedAt: '2026-11-24T00:00:00Z',
  lastNeededAt: '2026-11-24T00:00:00Z',
};

test('a file keyed by SHA-256 is found by its SHA-1 too, and not after it is deleted', () => {
  const index = memoryContentIndex();
  index.put(rec);
  assert.equal(index.find('a'.repeat(40))?.key, rec.key);
  index.delete(rec.key);
  assert.equal(index.find('a'.repeat(40)), undefined);
  assert.equal(index.find(rec.key), undefined);
});

test('the JSON file index is there after a restart; a damaged one is an error, never silently emptied', () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-index-'));
  try {
    const path = join(dir, 'index.json');
    jsonFileContentIndex(path).put(rec);
    assert.equal(jsonFileContentIndex(path).find('a'.repeat(40))?.size, 3);
    writeFileSync(path, '{"files": [');
    assert.throws(() => jsonFileContentIndex(path), /cannot be read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
