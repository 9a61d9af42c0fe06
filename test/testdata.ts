/**
 * Where tests find the shared third-party test data (CAB vectors, the wsusscn2 fixture, WUA's
 * error table): $PATCHLINE_TESTDATA when set, else `../shared/testdata` beside the repository.
 * Never a machine path, never copied into the repository. Tests that need a file skip with a
 * reason naming the path when it is absent.
 *
 * @example test('…', { skip: skipWithoutTestdata('cab', 'gcab') }, () => { … testdata('cab', 'gcab', 'x.cab') … })
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const TESTDATA_DIR = process.env.PATCHLINE_TESTDATA
  ? resolve(process.env.PATCHLINE_TESTDATA)
  : resolve(ROOT, '..', 'shared', 'testdata');

/** A path inside the shared test data. */
export function testdata(...parts: string[]): string {
  return join(TESTDATA_DIR, ...parts);
}

/** `false` when the path exists, else a skip reason for node:test saying where it was looked for. */
export function skipWithoutTestdata(...parts: string[]): false | string {
  const path = testdata(...parts);
  return existsSync(path)
    ? false
    : `shared test data not found at ${path} (set PATCHLINE_TESTDATA or put it at ../shared/testdata beside the repository)`;
}
