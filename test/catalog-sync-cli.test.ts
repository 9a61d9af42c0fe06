/**
 * `patchline catalog sync` end to end: a signed lab catalog served by the lab's fake Microsoft
 * upstream over real HTTP; the CLI as a process with its own state file.
 * Behaviours from the catalog issue: an unchanged re-sync transfers no body and re-imports
 * nothing; tampered and unsigned cabs are rejected with distinct errors and the previous catalog
 * stays current.
 */
import { test } from 'node:test';
import { skipWithoutTestdata, testdata } from './testdata.ts';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCatalogUpstream } from '../src/lab/catalog-upstream.ts';
import { makeLabCatalog } from './catalog-helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI_TIMEOUT_MS = 60_000;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;

test('catalog sync: download, verify, import; an unchanged re-sync moves no body and keeps the catalog', async (t) => {
  const lab = await makeLabCatalog();
  t.after(() => rm(lab.dir, { recursive: true, force: true }));
  const served = join(lab.dir, 'served.cab');
  await copyFile(lab.cab.out, served);
  const up = await startCatalogUpstream({ file: served });
  t.after(() => up.close());
  const state = join(lab.dir, 'state.sqlite');
  const sync = (...extra: string[]) =>
    cli(['catalog', 'sync', '--source', up.url, '--trust', lab.cab.rootPemFile, '--state', state, '--json', ...extra]);

  const first = await sync();
  assert.equal(first.code, 0, first.stderr);
  const imported = lastJson(first.stdout);
  assert.deepEqual([imported.event, imported.imported, imported.changed], ['synced', true, true]);
  const bodyAfterFirst = up.stats.bodyBytes;

  const second = await sync();
  assert.equal(second.code, 0, second.stderr);
  const again = lastJson(second.stdout);
  assert.deepEqual([again.changed, again.imported], [false, false]);
  assert.equal(up.stats.bodyBytes, bodyAfterFirst, 'the second sync transferred no body');

  const search = await cli(['catalog', 'search', '--kb', '5044444', '--state', state, '--json']);
  assert.equal(search.code, 0, search.stderr);
  assert.match(search.stdout, /5044444/);

  // The upstream now serves a tampered copy (one byte changed): rejected, previous catalog current.
  const bytes = await readFile(lab.cab.out);
  bytes[2000] = bytes[2000]! ^ 0xff;
  await writeFile(served, bytes);
  const tampered = await sync('--force');
  assert.equal(tampered.code, 1);
  assert.match(tampered.stderr, /CATALOG_TAMPERED/);
  const status = await cli(['catalog', 'status', '--state', state, '--json']);
  const current = (JSON.parse(status.stdout) as { current: { id: number } }).current;
  assert.equal(current.id, imported.versionId, 'the previous catalog stays current');

  // An unsigned cab (a real third-party vector) is refused with its own code.
  await t.test(
    'an unsigned third-party cabinet is refused',
    { skip: skipWithoutTestdata('cab', 'cabarchive', 'simple.cab') },
    async () => {
      await copyFile(testdata('cab', 'cabarchive', 'simple.cab'), served);
      const unsigned = await sync('--force');
      assert.equal(unsigned.code, 1);
      assert.match(unsigned.stderr, /CATALOG_UNSIGNED/);
    },
  );
});
