/**
 * Behaviour test 5 and the rejection paths: a catalog import killed halfway (SIGKILL of the real
 * CLI, paused by a test hook after its first committed batch) or aborted in-process leaves the
 * previous catalog current and queryable, and the next import succeeds; while an import runs, a
 * second one is refused. A tampered, unsigned or
 * untrusted cab is rejected with its error code and exit 1, and the previous catalog stays current.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultCabToolkit } from '../src/catalog/cab-toolkit.ts';
import { writeCab } from '../src/catalog/cab/index.ts';
import { importCatalogFile } from '../src/catalog/import-file.ts';
import { catalogStatus, searchCatalog } from '../src/catalog/query.ts';
import { HOLD_ENV, HOLD_MARKER } from '../src/cli/catalog-command.ts';
import { sqliteCatalogWriter } from '../src/store/catalog-repo.ts';
import { openStore, type Store } from '../src/store/db.ts';
import { makeLabCatalog, type LabCatalog } from './catalog-helpers.ts';

const CLI_TIMEOUT_MS = 60_000;
/** Catalog B has this many fillers, so package.xml needs several batches and the hold hits mid-way. */
const B_EXTRA_UPDATES = 6000;
const FIRST_FILLER_KB = '9000000';

let a: LabCatalog;
let b: LabCatalog;
let trust: string;
let state: string;

before(async () => {
  a = await makeLabCatalog(0);
  b = await makeLabCatalog(B_EXTRA_UPDATES, a.dir, 'wsusscn2-b.cab');
  trust = b.cab.rootPemFile;
  state = join(a.dir, 'state.sqlite');
  await withStore(async (store) => {
    await importCatalogFile(a.cab.out, sqliteCatalogWriter(store.sqlite), defaultCabToolkit(), {
      trustPems: [await readFile(trust, 'utf8')],
    });
  });
});

after(async () => {
  if (a) await rm(a.dir, { recursive: true, force: true });
});

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(state);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function cli(args: string[]) {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--state', state], {
    timeout: CLI_TIMEOUT_MS,
  });
}

/** The previous catalog (A: the scenario only) is the one answering queries. */
async function assertCatalogA(store: Store): Promise<void> {
  const status = await catalogStatus(store.db);
  assert.equal(status.current?.source, a.cab.out);
  assert.equal(status.current?.updates, a.cab.updates);
  assert.deepEqual(
    (await searchCatalog(store.db, { kb: '5044444' })).map((h) => h.kb),
    ['5044444'],
  );
  assert.deepEqual(await searchCatalog(store.db, { kb: FIRST_FILLER_KB }), [], 'nothing of the half import is visible');
}

test('an import killed halfway leaves the previous catalog current and queryable; the next import succeeds', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'catalog', 'import', b.cab.out, '--trust', trust, '--state', state],
    {
      // TMPDIR inside the test dir: a killed import cannot remove its temp files, `after` does.
      env: { ...process.env, [HOLD_ENV]: '1', TMPDIR: a.dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the import never reached the hold point; stderr: ${stderr}`)),
      CLI_TIMEOUT_MS,
    );
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(HOLD_MARKER)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the import exited before the hold point: ${stderr}`));
    });
  });
  // While it runs, a second import is refused rather than pulling the rows away under it.
  await withStore(async (store) => {
    await assert.rejects(
      importCatalogFile(a.cab.out, sqliteCatalogWriter(store.sqlite), defaultCabToolkit(), {
        trustPems: [await readFile(trust, 'utf8')],
      }),
      (error: { code: string; message: string }) =>
        error.code === 'CATALOG_IMPORT_BUSY' && error.message.includes(`:${child.pid}`),
    );
  });
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  const killedId = await withStore(async (store) => {
    const status = await catalogStatus(store.db);
    assert.ok(status.importing, 'the killed import left its version behind');
    const rows = store.sqlite
      .prepare('SELECT count(*) AS n FROM catalog_updates WHERE version_id = ?')
      .get(status.importing.id) as { n: number };
    assert.ok(rows.n > 0 && rows.n < b.cab.updates, `the killed import had written part of its rows (${rows.n})`);
    await assertCatalogA(store);
    return status.importing.id;
  });
  // The CLI sees catalog A too.
  assert.deepEqual(
    (JSON.parse((await cli(['catalog', 'search', '--kb', '5044444', '--json'])).stdout) as { kb: string }[]).map(
      (h) => h.kb,
    ),
    ['5044444'],
  );

  const { stdout } = await cli(['catalog', 'import', b.cab.out, '--trust', trust, '--json']);
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; updates: number });
  assert.ok(
    lines.some((l) => l.event === 'progress'),
    'NDJSON progress lines',
  );
  assert.equal(lines.at(-1)?.event, 'imported');
  await withStore(async (store) => {
    const status = await catalogStatus(store.db);
    assert.equal(status.current?.source, b.cab.out);
    assert.equal(status.current?.updates, b.cab.updates);
    assert.equal(status.previous?.source, a.cab.out, 'one previous version is kept');
    assert.equal(status.importing, null);
    const leftover = store.sqlite
      .prepare('SELECT count(*) AS n FROM catalog_updates WHERE version_id = ?')
      .get(killedId) as { n: number };
    assert.equal(leftover.n, 0, "the killed import's rows are gone");
    assert.deepEqual(
      (await searchCatalog(store.db, { kb: FIRST_FILLER_KB })).map((h) => h.kb),
      [FIRST_FILLER_KB],
    );
  });
});

test('an import aborted in-process keeps the current catalog and leaves nothing behind; a third import keeps one previous', async () => {
  await withStore(async (store) => {
    const before = await catalogStatus(store.db);
    const controller = new AbortController();
    await assert.rejects(
      importCatalogFile(a.cab.out, sqliteCatalogWriter(store.sqlite), defaultCabToolkit(), {
        trustPems: [await readFile(trust, 'utf8')],
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'shards') controller.abort();
        },
      }),
      (error: { code: string }) => error.code === 'CATALOG_IMPORT_ABORTED',
    );
    const after = await catalogStatus(store.db);
    assert.equal(after.current?.id, before.current?.id);
    assert.equal(after.importing, null);

    await importCatalogFile(a.cab.out, sqliteCatalogWriter(store.sqlite), defaultCabToolkit(), {
      trustPems: [await readFile(trust, 'utf8')],
    });
    const third = await catalogStatus(store.db);
    assert.equal(third.current?.source, a.cab.out);
    assert.equal(third.previous?.id, before.current?.id);
    const versions = store.sqlite.prepare('SELECT count(*) AS n FROM catalog_versions').get() as { n: number };
    assert.equal(versions.n, 2, 'older versions are deleted');
  });
});

test('tampered, unsigned and untrusted cabs are rejected with exit 1; the current catalog stays', async () => {
  const currentBefore = await withStore(async (store) => (await catalogStatus(store.db)).current?.id);
  const tampered = join(a.dir, 'tampered.cab');
  await copyFile(b.cab.out, tampered);
  const bytes = await readFile(tampered);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  await writeFile(tampered, bytes);
  const unsigned = join(a.dir, 'unsigned.cab');
  await writeCab(
    unsigned,
    [{ name: 'index.xml', source: Buffer.from('<INDEX VERSION="1"><CABLIST XOR="0"/></INDEX>') }],
    { compression: 'none' },
  );

  const cases: [string[], string][] = [
    [['catalog', 'import', tampered, '--trust', trust], 'CATALOG_TAMPERED'],
    [['catalog', 'import', unsigned, '--trust', trust], 'CATALOG_UNSIGNED'],
    [['catalog', 'import', a.cab.out], 'CATALOG_UNTRUSTED'],
  ];
  for (const [args, code] of cases) {
    await assert.rejects(cli(args), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 1, `${code}: exit code`);
      assert.match(error.stderr, new RegExp(code));
      return true;
    });
  }
  await withStore(async (store) => {
    const status = await catalogStatus(store.db);
    assert.equal(status.current?.id, currentBefore);
    assert.equal(status.importing, null);
  });
});
