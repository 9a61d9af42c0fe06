/**
 * The catalog corrections of issue 7, through the real importer and store: the release date comes
 * from package.xml (real x/ blobs have none), titles fall back to the update's DefaultLanguage,
 * every MoreInfoUrl and CveID is kept and shown, EULA blobs (e/<lang>/<rev>) are recognised and
 * left alone, and one malformed blob is skipped and counted instead of failing the import.
 * The catalog is a small hand-written one, served through the CatalogSource interface, imported
 * into each store (SQLite and PostgreSQL).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { importCatalog } from '../src/catalog/importer.ts';
import { showUpdate } from '../src/catalog/update-details.ts';
import { renderDetails, renderImportResult } from '../src/catalog/render.ts';
import { parseBlobName, parseCoreBlob } from '../src/catalog/shards.ts';
import type { CatalogSource } from '../src/catalog/source.ts';
import { catalogWriterFor } from '../src/store/catalog-repo.ts';
import { openDatabase } from '../src/store/open.ts';
import { freshLocation, STORE_KINDS, storeSkip } from './support/stores.ts';

const NS = 'http://schemas.microsoft.com/msus/2004/02/OfflineSync';
const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const update = (rev: number, lang: string, date: string) =>
  `<Update UpdateId="${U(rev)}" RevisionNumber="200" RevisionId="${rev}" CreationDate="${date}" DefaultLanguage="${lang}" IsLeaf="true"><Categories><Category Type="UpdateClassification" Id="0fa1201d-4330-4fa8-8ae9-b877473b6441"/></Categories></Update>`;
const PACKAGE_XML =
  `<?xml version="1.0" encoding="utf-8"?><OfflineSyncPackage xmlns="${NS}" PackageId="p" CreationDate="2026-11-12T00:00:00Z"><Updates>` +
  update(100, 'en', '2026-11-10T17:00:00Z') +
  update(101, 'ja', '2026-11-11T00:00:00Z') +
  update(102, 'ja', '2026-11-11T00:00:00Z') +
  update(103, 'en', '2026-11-11T00:00:00Z') +
  '</Updates><FileLocations/></OfflineSyncPackage>';
const INDEX_XML =
  '<INDEX VERSION="1"><CABLIST XOR="0"><CAB NAME="package.cab"/><CAB NAME="package2.cab" RANGESTART="0" FILESDIR="1"/></CABLIST></INDEX>';
const loc = (lang: string, title: string, extra = '') =>
  `<LocalizedProperties><Language>${lang}</Language><Title>${title}</Title>${extra}</LocalizedProperties>`;

// Shard members in cab order (directories sorted: c, e, l/en before l/ja, x).
const BLOBS: [string, string][] = [
  ['c\\100', `<UpdateIdentity UpdateID="${U(100)}" RevisionNumber="200"/><Properties UpdateType="Software"/>`],
  ['e\\en\\100', 'MICROSOFT SOFTWARE LICENSE TERMS'],
  [
    'l\\en\\100',
    loc(
      'en',
      '2026-11 Cumulative Update (KB5044444)',
      '<MoreInfoUrl>https://support.microsoft.com/help/5044444</MoreInfoUrl><MoreInfoUrl>https://msrc.microsoft.com/update-guide/</MoreInfoUrl>',
    ),
  ],
  ['l\\en\\102', loc('en', 'English title of 102')],
  ['l\\en\\103', loc('en', 'Update 103 keeps its title')],
  ['l\\ja\\101', loc('ja', '日本語のみの更新プログラム')],
  ['l\\ja\\102', loc('ja', '102 の日本語タイトル')],
  // No CreationDate, as Microsoft ships x/ blobs; two CVEs.
  [
    'x\\100',
    '<ExtendedProperties DefaultPropertiesLanguage="en" MsrcSeverity="Critical"><KBArticleID>5044444</KBArticleID><CveID>CVE-2026-21001</CveID><CveID>CVE-2026-21002</CveID></ExtendedProperties>',
  ],
  // Malformed: an entity XML does not define.
  ['x\\103', '<ExtendedProperties MsrcSeverity="Low"><KBArticleID>5044445&nbsp;</KBArticleID></ExtendedProperties>'],
];

function source(): CatalogSource {
  return {
    description: 'hand-written test catalog',
    indexXml: async () => INDEX_XML,
    packageXml: async function* () {
      yield Buffer.from(PACKAGE_XML);
    },
    shardBlobs: async function* (name: string) {
      if (name !== 'package2.cab') return;
      for (const [blob, text] of BLOBS) yield { name: blob, bytes: Buffer.from(text) };
    },
    close: async () => undefined,
  };
}

for (const kind of STORE_KINDS) {
  test(
    `[${kind}] corrections: release date from package.xml, DefaultLanguage titles, CVEs and links kept, a bad blob skipped and counted`,
    { skip: storeSkip(kind) },
    async () => {
      const store = await openDatabase(await freshLocation(kind));
      try {
        const result = await importCatalog(source(), catalogWriterFor(store));
        assert.equal(result.updates, 4);
        assert.equal(result.blobsSkipped, 1, 'the malformed x/103 is skipped, the import goes on');
        assert.match(result.skippedExamples[0] ?? '', /^package2\.cab!x\/103: unknown entity &nbsp;/);
        assert.match(renderImportResult(result), /1 malformed shard blob\(s\) were skipped[\s\S]*x\/103/);

        const [u100] = await showUpdate(store.db, U(100));
        assert.equal(u100?.releaseDate, '2026-11-10T17:00:00Z', 'Update/@CreationDate, since x/ carries none');
        assert.equal(u100?.kb, '5044444');
        assert.deepEqual(u100?.cveIds, ['CVE-2026-21001', 'CVE-2026-21002']);
        assert.deepEqual(u100?.moreInfoUrls, [
          'https://support.microsoft.com/help/5044444',
          'https://msrc.microsoft.com/update-guide/',
        ]);
        const shown = renderDetails(u100!);
        assert.match(shown, /CVEs +CVE-2026-21001, CVE-2026-21002/);
        assert.match(
          shown,
          /More information:\n {2}https:\/\/support\.microsoft\.com\/help\/5044444\n {2}https:\/\/msrc/,
        );

        const [u101] = await showUpdate(store.db, U(101));
        assert.equal(u101?.title, '日本語のみの更新プログラム', 'no English blob: the DefaultLanguage title');
        const [u102] = await showUpdate(store.db, U(102));
        assert.equal(
          u102?.title,
          'English title of 102',
          'the asked-for language wins over DefaultLanguage, whatever the blob order',
        );
        const [u103] = await showUpdate(store.db, U(103));
        assert.equal(u103?.title, 'Update 103 keeps its title');
        assert.equal(u103?.kb, null, "only the malformed blob's fields are missing");
      } finally {
        await store.close();
      }
    },
  );

  test(
    `[${kind}] a second import with the primary language first still keeps it over the DefaultLanguage`,
    { skip: storeSkip(kind) },
    async () => {
      // Reverse the l/ blobs: ja before en. The result must not depend on the order.
      const reversed = [...BLOBS].reverse();
      const store = await openDatabase(await freshLocation(kind));
      try {
        const src = {
          ...source(),
          shardBlobs: async function* () {
            for (const [blob, text] of reversed) yield { name: blob, bytes: Buffer.from(text) };
          },
        };
        await importCatalog(src, catalogWriterFor(store));
        assert.equal((await showUpdate(store.db, U(102)))[0]?.title, 'English title of 102');
      } finally {
        await store.close();
      }
    },
  );
}

test('EULA blobs are e/<lang>/<rev>; BundledUpdates members inside AtLeastOne count', () => {
  assert.deepEqual(parseBlobName('e\\en\\345678'), { kind: 'e', language: 'en', revisionId: 345678 });
  assert.deepEqual(parseBlobName('e/de/1'), { kind: 'e', language: 'de', revisionId: 1 });
  const core = parseCoreBlob(
    `<UpdateIdentity UpdateID="${U(1)}"/><Properties UpdateType="Software"/><Relationships><BundledUpdates>` +
      `<UpdateIdentity UpdateID="${U(2).toUpperCase()}" RevisionNumber="1"/>` +
      `<AtLeastOne><UpdateIdentity UpdateID="${U(3)}" RevisionNumber="1"/><UpdateIdentity UpdateID="${U(4)}" RevisionNumber="1"/></AtLeastOne>` +
      '</BundledUpdates></Relationships>',
  );
  assert.deepEqual(core.bundledUpdateIds, [U(2), U(3), U(4)]);
});
