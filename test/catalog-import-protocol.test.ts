/**
 * The import protocol on both stores (SQLite and PostgreSQL): while an import writes, readers see
 * the previous catalog and none of the new rows; an import aborted halfway leaves the previous
 * catalog current and none of its rows behind; a version left `importing` by a killed importer is
 * deleted by the next import, while one whose importer still lives makes the next import refuse;
 * an import whose clean-up fails too (the database went away) still reports why it stopped.
 * (The SIGKILL of a real CLI import is catalog-import-kill.test.ts, on the CLI's SQLite state.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { spawnSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { defaultCabToolkit } from '../src/catalog/cab-toolkit.ts';
import { importCatalogFile } from '../src/catalog/import-file.ts';
import { isRunningHere } from '../src/catalog/importer.ts';
import { catalogStatus, searchCatalog } from '../src/catalog/query.ts';
import { catalogWriterFor, VERSIONED_TABLES } from '../src/store/catalog-repo.ts';
import { openDatabase, type Database_ } from '../src/store/open.ts';
import { makeLabCatalog, type LabCatalog } from './catalog-helpers.ts';
import { freshLocation, STORE_KINDS, storeSkip, type StoreKind } from './support/stores.ts';

/** Catalog B has this many fillers, so package.xml takes several batches before the shards. */
const B_EXTRA_UPDATES = 3000;
const FIRST_FILLER_KB = '9000000';

let a: LabCatalog;
let b: LabCatalog;
let trustPems: string[];

before(async () => {
  a = await makeLabCatalog(0);
  b = await makeLabCatalog(B_EXTRA_UPDATES, a.dir, 'wsusscn2-b.cab');
  trustPems = [await readFile(b.cab.rootPemFile, 'utf8')];
});

after(async () => {
  if (a) await rm(a.dir, { recursive: true, force: true });
});

async function withCatalogA(kind: StoreKind, fn: (store: Database_, versionA: number) => Promise<void>): Promise<void> {
  const store = await openDatabase(await freshLocation(kind));
  try {
    const imported = await importCatalogFile(a.cab.out, catalogWriterFor(store), defaultCabToolkit(), { trustPems });
    await fn(store, imported.versionId);
  } finally {
    await store.close();
  }
}

/** Rows a version has in every per-version table. */
async function rowsOf(store: Database_, versionId: number): Promise<number> {
  let n = 0;
  for (const table of VERSIONED_TABLES) {
    const row = await store.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('version_id', '=', versionId)
      .executeTakeFirstOrThrow();
    n += Number(row.n);
  }
  return n;
}

/** Catalog A (the scenario alone) answers queries; nothing of B is visible. */
async function assertCatalogA(store: Database_, versionA: number): Promise<void> {
  const status = await catalogStatus(store.db);
  assert.equal(status.current?.id, versionA);
  assert.equal(status.current?.updates, a.cab.updates);
  assert.deepEqual(
    (await searchCatalog(store.db, { kb: '5044444' })).map((h) => h.kb),
    ['5044444'],
  );
  assert.deepEqual(await searchCatalog(store.db, { kb: FIRST_FILLER_KB }), [], 'nothing of the half import is visible');
}

for (const kind of STORE_KINDS) {
  test(
    `[${kind}] an import aborted halfway: readers saw the previous catalog throughout, and its rows are gone`,
    {
      skip: storeSkip(kind),
    },
    async () => {
      await withCatalogA(kind, async (store, versionA) => {
        const controller = new AbortController();
        let halfway: { id: number; rows: number } | undefined;
        await assert.rejects(
          importCatalogFile(b.cab.out, catalogWriterFor(store), defaultCabToolkit(), {
            trustPems,
            signal: controller.signal,
            onProgress: async (p) => {
              if (p.phase !== 'shards' || halfway) return;
              // Every package.xml batch is committed by now, yet readers still get catalog A.
              const importing = (await catalogStatus(store.db)).importing;
              assert.ok(importing, 'the import shows as importing');
              halfway = { id: importing.id, rows: await rowsOf(store, importing.id) };
              await assertCatalogA(store, versionA);
              controller.abort();
            },
          }),
          (error: { code: string }) => error.code === 'CATALOG_IMPORT_ABORTED',
        );
        assert.ok(halfway, 'the import reached its shards before the abort');
        assert.ok(halfway.rows > B_EXTRA_UPDATES, `the import had written its package rows (${halfway.rows})`);
        await assertCatalogA(store, versionA);
        assert.equal((await catalogStatus(store.db)).importing, null);
        assert.equal(await rowsOf(store, halfway.id), 0, "the aborted import's rows are deleted");
      });
    },
  );

  test(
    `[${kind}] a killed importer's leftover version goes with the next import; a live one's makes it refuse`,
    {
      skip: storeSkip(kind),
    },
    async () => {
      await withCatalogA(kind, async (store, versionA) => {
        const writer = catalogWriterFor(store);
        const leftover = async (importer: string): Promise<number> => {
          const id = await writer.beginImport({
            source: 'elsewhere.cab',
            signerSubject: null,
            now: new Date(),
            importer,
            isRunning: isRunningHere,
          });
          const update = {
            updateId: '00000000-0000-0000-0000-000000000001',
            revisionId: 1,
            revisionNumber: 1,
            creationDate: null,
            defaultLanguage: 'en',
            isBundle: false,
            isLeaf: true,
            deploymentAction: null,
            categories: [{ id: 'c', type: 'Product' }],
            prerequisites: [],
            bundledBy: [],
            supersededBy: [],
            payloadFiles: ['f'],
          };
          await writer.writePackageBatch(id, [update], [{ id: 'f', url: 'http://u/f', isIncluded: false }]);
          return id;
        };

        // The parent of this test process is alive: its import must not be pulled away under it.
        const live = await leftover(`${hostname()}:${process.ppid}`);
        await assert.rejects(
          importCatalogFile(b.cab.out, catalogWriterFor(store), defaultCabToolkit(), { trustPems }),
          (error: { code: string }) => error.code === 'CATALOG_IMPORT_BUSY',
        );
        assert.ok((await rowsOf(store, live)) > 0, "the live import's rows stay");
        await writer.deleteVersion(live);

        // A process that has exited: its version is garbage.
        const gone = spawnSync(process.execPath, ['-e', '']).pid;
        const killed = await leftover(`${hostname()}:${gone}`);
        const imported = await importCatalogFile(b.cab.out, catalogWriterFor(store), defaultCabToolkit(), {
          trustPems,
        });
        assert.equal(await rowsOf(store, killed), 0, "the killed import's rows are gone");
        const status = await catalogStatus(store.db);
        assert.equal(status.current?.id, imported.versionId);
        assert.equal(status.current?.updates, b.cab.updates);
        assert.equal(status.previous?.id, versionA, 'the previous catalog is kept');
        assert.equal(status.importing, null);
        assert.deepEqual(
          (await searchCatalog(store.db, { kb: FIRST_FILLER_KB })).map((h) => h.kb),
          [FIRST_FILLER_KB],
        );
      });
    },
  );
  test(
    `[${kind}] an aborted import whose clean-up fails reports the abort; the next import removes its rows`,
    {
      skip: storeSkip(kind),
    },
    async () => {
      await withCatalogA(kind, async (store, versionA) => {
        const controller = new AbortController();
        const failing = {
          ...catalogWriterFor(store),
          deleteVersion: async () => {
            throw new Error('connection terminated unexpectedly');
          },
        };
        await assert.rejects(
          importCatalogFile(b.cab.out, failing, defaultCabToolkit(), {
            trustPems,
            signal: controller.signal,
            onProgress: (p) => {
              if (p.phase === 'shards') controller.abort();
            },
          }),
          (error: { code: string; message: string }) =>
            error.code === 'CATALOG_IMPORT_ABORTED' &&
            /could not be removed now \(connection terminated unexpectedly\); the next import removes them/.test(
              error.message,
            ),
        );
        const left = (await catalogStatus(store.db)).importing;
        assert.ok(left && (await rowsOf(store, left.id)) > 0, 'the half-written version is still there');
        await assertCatalogA(store, versionA);
        await importCatalogFile(a.cab.out, catalogWriterFor(store), defaultCabToolkit(), { trustPems });
        assert.equal(await rowsOf(store, left.id), 0, 'the next import removed it');
      });
    },
  );
  test(
    `[${kind}] an import the database refuses is a store failure, not a malformed catalog; the previous catalog stays`,
    { skip: storeSkip(kind) },
    async () => {
      await withCatalogA(kind, async (store, versionA) => {
        const writer = catalogWriterFor(store);
        // The driver's own error (SqliteError / pg's DatabaseError), as when the disk fills up.
        const refusing = {
          ...writer,
          writePackageBatch: async () => {
            await sql`SELECT * FROM no_such_table_patchline`.execute(store.db);
          },
        };
        await assert.rejects(
          importCatalogFile(b.cab.out, refusing, defaultCabToolkit(), { trustPems }),
          (error: { code: string; message: string }) =>
            error.code === 'CATALOG_STORE_FAILED' && /check the database/.test(error.message),
        );
        await assertCatalogA(store, versionA);
      });
    },
  );
}
