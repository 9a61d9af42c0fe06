/**
 * The real vuls-data-update wsusscn2.cab fixture (read from ../shared/testdata at run time,
 * or $PATCHLINE_TESTDATA; never copied into the repo): imported through the pure-TS CAB reader,
 * and its unpacked directory through the CLI's --skip-signature path, both answer the same.
 * The fixture is unsigned, so the signed path is covered by catalog-lab.test.ts instead. The cab
 * import runs on both stores (SQLite and PostgreSQL).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { importCatalog } from '../src/catalog/importer.ts';
import { searchCatalog } from '../src/catalog/query.ts';
import { showUpdate } from '../src/catalog/update-details.ts';
import { cabSource } from '../src/catalog/source-cab.ts';
import { catalogWriterFor } from '../src/store/catalog-repo.ts';
import { openDatabase } from '../src/store/open.ts';
import { freshLocation, STORE_KINDS, storeSkip } from './support/stores.ts';
import { testdata } from './testdata.ts';

const FIXTURE = testdata('wsus', 'vuls-data-update');
const skip = existsSync(join(FIXTURE, 'wsusscn2.cab')) ? false : `fixture not found at ${FIXTURE}`;
const CLI_TIMEOUT_MS = 60_000;
const dirs: string[] = [];

after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

for (const kind of STORE_KINDS)
  test(
    `[${kind}] the real fixture cab imports; KB, titles, severity and the supersedence chain come out`,
    { skip: skip || storeSkip(kind) },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'patchline-fixture-'));
      dirs.push(dir);
      const store = await openDatabase(await freshLocation(kind));
      try {
        const source = await cabSource(join(FIXTURE, 'wsusscn2.cab'), { tempDir: dir });
        try {
          const result = await importCatalog(source, catalogWriterFor(store));
          assert.equal(result.updates, 4);
          assert.equal(result.shards, 2);
        } finally {
          await source.close();
        }
        const [hit] = await searchCatalog(store.db, { kb: '765432' });
        assert.equal(
          hit?.title,
          '2020-09 Security Monthly Quality Rollup for Windows Server 2012 R2 for x64-based Systems (KB4577066)',
        );
        assert.equal(hit?.severity, 'Important');
        assert.deepEqual(
          (await searchCatalog(store.db, { text: 'windows 8' })).map((h) => h.kb),
          ['876543'],
          'the shard in package3.cab was read',
        );
        const [first] = await showUpdate(store.db, '0a51549b-4e86-4a26-97d4-9e3567f24ea1');
        assert.deepEqual(
          first?.supersededBy.map((l) => [l.kb, l.depth]),
          [
            ['765432', 1],
            ['876543', 2],
          ],
        );
        const [last] = await showUpdate(store.db, '1c560bb8-276c-41ca-b597-35ae23bf424c');
        assert.deepEqual(
          last?.supersedes.map((l) => l.kb),
          ['765432', '654321'],
        );
        // Revision 456789 has no shard blobs: it exists, untitled, with its package.xml facts.
        const [bare] = await showUpdate(store.db, '913aa7a4-75d8-4abc-9d66-8ddc163be471');
        assert.equal(bare?.title, null);
        assert.deepEqual(
          bare?.categories.map((c) => c.type),
          ['UpdateClassification', 'Product', 'ProductFamily', 'Company'],
        );
        assert.deepEqual(
          bare?.prerequisites.map((g) => [g.kind, g.updates.length]),
          [['all', 2]],
        );
        const file = await store.db
          .selectFrom('catalog_files')
          .select('file_name')
          .where('file_id', '=', 'fQTAfvF3nDnhdPA/eUmJ+CSM/3Q=')
          .executeTakeFirst();
        assert.equal(file?.file_name, 'vviewersp1-zh-cn.cab');
      } finally {
        await store.close();
      }
    },
  );

test('an unpacked directory imports through the CLI only with --skip-signature', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-fixture-'));
  dirs.push(dir);
  const state = join(dir, 'state.sqlite');
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--state', state], {
      timeout: CLI_TIMEOUT_MS,
    });
  await assert.rejects(
    cli(['catalog', 'search', '--kb', '654321']),
    (e: { code: number; stderr: string }) =>
      e.code === 1 && /CATALOG_EMPTY.*catalog sync.*catalog import/.test(e.stderr),
  );
  await assert.rejects(
    cli(['catalog', 'import', join(FIXTURE, 'extracted')]),
    (e: { code: number; stderr: string }) => e.code === 64 && /CATALOG_UNVERIFIABLE/.test(e.stderr),
  );
  await cli(['catalog', 'import', join(FIXTURE, 'extracted'), '--skip-signature']);
  const { stdout } = await cli(['catalog', 'search', '--kb', '654321']);
  assert.match(stdout, /^KB\s+RELEASED\s+SEVERITY/);
  assert.match(
    stdout,
    /KB654321\s+2017-06-27\s+Important\s+-\s+-\s+0a51549b-4e86-4a26-97d4-9e3567f24ea1\s+Security Update for Windows Server 2012 R2 \(KB3019978\)/,
  );
  const status = JSON.parse((await cli(['catalog', 'status', '--json'])).stdout) as {
    current: { updates: number; signerSubject: string | null };
  };
  assert.equal(status.current.updates, 4);
  assert.equal(status.current.signerSubject, null);
});
