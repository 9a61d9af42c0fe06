/**
 * Behaviour test 6: a lab catalog generated from a scenario, imported through the real path
 * (signature check with --trust, pure-TS CAB reader, streaming parser, store), answers search
 * and show with exactly what the scenario defined: KB, severity, products, classification,
 * supersedence both ways (with chains) and prerequisites (resolved to titles). The same catalog
 * is imported into SQLite and PostgreSQL, and every query answers the same on both.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { defaultCabToolkit } from '../src/catalog/cab-toolkit.ts';
import { importCatalogFile } from '../src/catalog/import-file.ts';
import { catalogStatus, searchCatalog, type SearchCriteria } from '../src/catalog/query.ts';
import { showUpdate } from '../src/catalog/update-details.ts';
import { catalogWriterFor } from '../src/store/catalog-repo.ts';
import { openDatabase, type Database_ } from '../src/store/open.ts';
import { categoriesOf } from '../src/lab/update-record.ts';
import { makeLabCatalog, type LabCatalog } from './catalog-helpers.ts';
import { freshLocation, STORE_KINDS, storeSkip, type StoreKind } from './support/stores.ts';

const CLI_TIMEOUT_MS = 60_000;
let lab: LabCatalog;
const stores = new Map<StoreKind, { store: Database_; location: string }>();

before(async () => {
  lab = await makeLabCatalog(40);
  const trustPems = [await readFile(lab.cab.rootPemFile, 'utf8')];
  for (const kind of STORE_KINDS) {
    if (storeSkip(kind) !== undefined) continue;
    const location = await freshLocation(kind);
    const store = await openDatabase(location);
    stores.set(kind, { store, location });
    await importCatalogFile(lab.cab.out, catalogWriterFor(store), defaultCabToolkit(), { trustPems });
  }
});

after(async () => {
  for (const { store } of stores.values()) await store.close();
  if (lab) await rm(lab.dir, { recursive: true, force: true });
});

const key = (k: string) => lab.scenario.byKey.get(k)!;

for (const kind of STORE_KINDS) {
  describe(`the lab catalog imported into ${kind}`, { skip: storeSkip(kind) }, () => {
    const db = () => stores.get(kind)!.store.db;

    test("search --kb finds exactly the scenario's update, with its severity, classification and products", async () => {
      for (const entry of lab.scenario.catalog) {
        const hits = await searchCatalog(db(), { kb: `KB${entry.kb}` });
        assert.equal(hits.length, 1, `KB${entry.kb}`);
        const hit = hits[0]!;
        assert.equal(hit.updateId, entry.updateId);
        assert.equal(hit.title, entry.title);
        assert.equal(hit.severity, entry.severity);
        assert.equal(hit.classification, entry.classification);
        assert.deepEqual([...hit.products].sort(), [...entry.products].sort());
        assert.equal(hit.releaseDate?.slice(0, 10), entry.released.slice(0, 10));
      }
    });

    test('search by words, product, classification and release date returns exactly the matching scenario updates', async () => {
      const hits = await searchCatalog(db(), {
        text: 'cumulative update',
        product: 'Windows Server 2022',
        classification: 'Security Updates',
        since: '2026-10-01',
      });
      assert.deepEqual(
        hits.map((h) => h.kb),
        ['5044444', '5044281'],
        'newest first; September CU is older, .NET is not a security update',
      );
      const net = await searchCatalog(db(), { product: 'windows server 2019' });
      assert.deepEqual(
        net.map((h) => h.kb),
        ['5045555'],
        'product names match case-insensitively',
      );
      const critical = await searchCatalog(db(), { severity: 'critical', product: 'Windows Server 2022' });
      assert.deepEqual(critical.map((h) => h.kb).sort(), ['5043050', '5044281', '5044444']);
      const until = await searchCatalog(db(), { product: 'Windows Server 2022', until: '2026-09-30' });
      assert.deepEqual(
        until.map((h) => h.kb),
        ['5041160'],
      );
      assert.deepEqual(await searchCatalog(db(), { text: 'no such words anywhere' }), []);
    });

    test('show: prerequisites resolved to titles, with the product "one of" group', async () => {
      const [cu] = await showUpdate(db(), 'KB5044444');
      assert.ok(cu);
      const all = cu.prerequisites.find((g) => g.kind === 'all');
      assert.deepEqual(
        all?.updates.map((u) => [u.updateId, u.title]),
        [[key('ssu-2026-10').updateId, key('ssu-2026-10').title]],
      );
      const oneOf = cu.prerequisites.find((g) => g.kind === 'oneOf');
      const productId = categoriesOf(key('cu-2026-11')).find((c) => c.type === 'Product')!.id;
      assert.deepEqual(
        oneOf?.updates.map((u) => [u.updateId, u.title]),
        [[productId, 'Windows Server 2022']],
      );
      assert.equal(cu.rebootBehavior, 'AlwaysRequiresReboot');
      assert.equal(cu.impact, 'RequiresExclusiveHandling');
      const [ssu] = await showUpdate(db(), key('ssu-2026-10').updateId);
      assert.equal(ssu?.prerequisites.filter((g) => g.kind === 'all').length, 0, 'the SSU requires nothing');
    });

    test('show: supersedence both ways, following the chain', async () => {
      const [newest] = await showUpdate(db(), 'KB5044444');
      assert.deepEqual(
        newest?.supersedes.map((l) => [l.kb, l.depth]),
        [
          ['5044281', 1],
          ['5041160', 2],
        ],
      );
      assert.deepEqual(newest?.supersededBy, []);
      const [oldest] = await showUpdate(db(), key('cu-2026-09').updateId);
      assert.deepEqual(
        oldest?.supersededBy.map((l) => [l.kb, l.depth, l.title]),
        [
          ['5044281', 1, key('cu-2026-10').title],
          ['5044444', 2, key('cu-2026-11').title],
        ],
      );
      const [middle] = await showUpdate(db(), 'kb5044281');
      assert.deepEqual(
        middle?.supersedes.map((l) => l.kb),
        ['5041160'],
      );
      assert.deepEqual(
        middle?.supersededBy.map((l) => l.kb),
        ['5044444'],
      );
    });

    test('show: payload file with its SHA-1/SHA-256 digests and a Microsoft-shaped URL', async () => {
      const [cu] = await showUpdate(db(), 'KB5044444');
      assert.equal(cu?.files.length, 1);
      const file = cu!.files[0]!;
      assert.match(
        file.url ?? '',
        /^http:\/\/download\.windowsupdate\.com\/d\/msdownload\/update\/software\/secu\/2026\/11\/windows10\.0-kb5044444-x64_[0-9a-f]{40}\.msu$/,
      );
      const sha1Hex = Buffer.from(file.sha1, 'base64').toString('hex');
      assert.ok(file.url!.includes(sha1Hex), 'the URL names the file by its SHA-1, as Microsoft does');
      assert.equal(Buffer.from(file.sha256 ?? '', 'base64').length, 32);
      assert.equal(file.fileName, file.url!.slice(file.url!.lastIndexOf('/') + 1));
    });

    test('optional and non-security updates keep their flags; status names the signer', async () => {
      const [defender] = await showUpdate(db(), 'KB2267602');
      assert.equal(defender?.browseOnly, true);
      assert.equal(defender?.severity, null);
      const status = await catalogStatus(db());
      assert.equal(status.current?.signerSubject, 'CN=Patchline Lab Catalog Signing, O=Patchline Lab');
      assert.equal(status.current?.updates, lab.cab.updates);
      assert.equal(status.previous, null);
      assert.equal(status.importing, null);
    });
  });
}

test('text search finds the same on every path: FTS5 and LIKE on SQLite, word patterns on PostgreSQL', async () => {
  const sqlite = stores.get('sqlite')!.store.db;
  const pg = stores.get('postgres')?.store.db;
  const ids = async (db: Database_['db'], criteria: SearchCriteria) =>
    (await searchCatalog(db, criteria)).map((h) => h.updateId);
  for (const text of [
    'cumulative update',
    'CUMULATIVE',
    'cumul upd',
    'Servicing',
    '.NET Framework',
    'kb5044444',
    'Server 2019',
    'x64-based',
    'nothing like this',
  ]) {
    const fts = await ids(sqlite, { text, textIndex: 'fts' });
    assert.deepEqual(await ids(sqlite, { text, textIndex: 'like' }), fts, `LIKE: ${text}`);
    if (pg) assert.deepEqual(await ids(pg, { text }), fts, `PostgreSQL: ${text}`);
  }
  assert.ok((await ids(sqlite, { text: 'cumulative update' })).length >= 3, 'the words find the CUs');
  // FTS5 matches the start of words, not inside them; so does PostgreSQL (LIKE would find "Update").
  assert.deepEqual(await ids(sqlite, { text: 'pdate' }), []);
  if (pg) assert.deepEqual(await ids(pg, { text: 'pdate' }), []);
  assert.equal(
    (await searchCatalog(sqlite, { text: '100%_', textIndex: 'like' })).length,
    0,
    '% and _ are literal characters',
  );
});

test('the CLI prints the same as JSON, and says what to do on an unknown update', async () => {
  const run = (args: string[]) =>
    promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args, '--state', stores.get('sqlite')!.location],
      {
        timeout: CLI_TIMEOUT_MS,
      },
    );
  const { stdout } = await run([
    'catalog',
    'search',
    'cumulative',
    'update',
    '--product',
    'Windows Server 2022',
    '--classification',
    'Security Updates',
    '--since',
    '2026-10-01',
    '--json',
  ]);
  assert.deepEqual(
    (JSON.parse(stdout) as { kb: string }[]).map((h) => h.kb),
    ['5044444', '5044281'],
  );
  const text = (await run(['catalog', 'show', 'KB5044444'])).stdout;
  assert.match(text, /Supersedes:\n {2}KB5044281 .*\n {4}KB5041160 /);
  await assert.rejects(run(['catalog', 'show', 'KB1234567']), (error: { code: number; stderr: string }) => {
    assert.equal(error.code, 1);
    assert.match(error.stderr, /CATALOG_UPDATE_NOT_FOUND/);
    return true;
  });
});
