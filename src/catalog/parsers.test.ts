/**
 * Parser tests against the real vuls-data-update fixture (read at run time from
 * ../shared/testdata/wsus beside the repository — or $PATCHLINE_TESTDATA — never copied into it), compared
 * with vuls' golden output where its schema carries the same facts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseIndexXml, renderIndexXml, shardFor } from './index-xml.ts';
import { OFFLINE_SYNC_NS, readPackageXml, type PackageUpdate } from './package-xml.ts';
import { parseBlobName, parseCoreBlob, parseExtendedBlob, parseLocalizedBlob } from './shards.ts';
import { dateBound, ftsQuery, likePatterns, wordPatterns } from './query.ts';
import { testdata } from '../../test/testdata.ts';

const FIXTURE = testdata('wsus', 'vuls-data-update');
const EXTRACTED = join(FIXTURE, 'extracted');
const GOLDEN = join(FIXTURE, 'golden');
const skip = existsSync(EXTRACTED) ? false : `fixture not found at ${EXTRACTED}`;

async function golden(kind: string, rev: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(GOLDEN, kind, `${rev}.json`), 'utf8')) as Record<string, unknown>;
}

async function allUpdates(input: AsyncIterable<string | Buffer>, batchSize?: number): Promise<PackageUpdate[]> {
  const out: PackageUpdate[] = [];
  for await (const batch of readPackageXml(input, { batchSize })) out.push(...batch.updates);
  return out;
}

test('package.xml of the fixture yields every Update as vuls golden u/<rev>.json says', { skip }, async () => {
  const updates = await allUpdates(createReadStream(join(EXTRACTED, 'package', 'package.xml'), { highWaterMark: 64 }));
  const revs = (await readdir(join(GOLDEN, 'u'))).map((f) => f.replace(/\.json$/, '')).sort();
  assert.deepEqual(updates.map((u) => String(u.revisionId)).sort(), revs);
  for (const u of updates) {
    const g = await golden('u', String(u.revisionId));
    assert.equal(u.updateId, g.updateid);
    assert.equal(String(u.revisionNumber), g.revisionnumber);
    assert.equal(u.creationDate, g.creationdate);
    assert.equal(u.defaultLanguage, g.defaultlanguage);
    assert.equal(u.isLeaf, g.isleaf === 'true');
    assert.equal(u.isBundle, g.isbundle === 'true');
    const superseded = ((g.supersededby as { revision?: { id: string }[] } | undefined)?.revision ?? []).map((r) =>
      Number(r.id),
    );
    assert.deepEqual(u.supersededBy, superseded);
    const cats = ((g.categories as { category?: { id: string; type: string }[] } | undefined)?.category ?? []).map(
      (c) => ({ id: c.id, type: c.type }),
    );
    assert.deepEqual(u.categories, cats);
  }
  const last = updates.find((u) => u.revisionId === 456789)!;
  assert.deepEqual(last.prerequisites, [
    { updateId: '0fa1201d-4330-4fa8-8ae9-b877473b6441', orGroup: null },
    { updateId: '12c24e87-bd40-451b-9477-2c2bf501e0d7', orGroup: null },
  ]);
});

test("package.xml in Microsoft's namespace: header, Or groups, BundledBy, payload files and locations", async () => {
  const xml =
    `<?xml version="1.0" encoding="utf-8"?><OfflineSyncPackage xmlns="${OFFLINE_SYNC_NS}" MinimumClientVersion="5.8.0.2678" ProtocolVersion="1.0" PackageId="11111111-2222-3333-4444-555555555555" SourceId="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" CreationDate="2026-11-11T03:00:00Z" PackageVersion="1.1"><Updates>` +
    `<Update UpdateId="A0000000-0000-0000-0000-000000000001" RevisionId="10" RevisionNumber="3" CreationDate="2026-11-11T00:00:00Z" IsLeaf="true" DeploymentAction="Bundle"><Categories><Category Type="Product" Id="B0000000-0000-0000-0000-000000000001"/></Categories>` +
    `<Prerequisites><UpdateId Id="c0000000-0000-0000-0000-000000000001"/><Or><UpdateId Id="c0000000-0000-0000-0000-000000000002"/><UpdateId Id="c0000000-0000-0000-0000-000000000003"/></Or><Or><UpdateId Id="c0000000-0000-0000-0000-000000000004"/></Or></Prerequisites>` +
    `<BundledBy><Revision Id="11"/></BundledBy><SupersededBy><Revision Id="12"/><Revision Id="13"/></SupersededBy><PayloadFiles><File Id="fQTAfvF3nDnhdPA/eUmJ+CSM/3Q="/></PayloadFiles><Languages><Language Name="en"/></Languages></Update>` +
    `</Updates><FileLocations><FileLocation Id="fQTAfvF3nDnhdPA/eUmJ+CSM/3Q=" Url="http://download.windowsupdate.com/d/x_7d04c07e.cab" IsIncluded="false"/></FileLocations></OfflineSyncPackage>`;
  const batches = [];
  // Split into 7-byte chunks, including mid-tag and mid-attribute: streaming must not care.
  const chunks = Buffer.from(xml).reduce<Buffer[]>(
    (acc, _b, i, all) => (i % 7 === 0 ? [...acc, Buffer.from(all.subarray(i, i + 7))] : acc),
    [],
  );
  for await (const b of readPackageXml(Readable.from(chunks))) batches.push(b);
  assert.equal(batches[0]?.header?.packageId, '11111111-2222-3333-4444-555555555555');
  assert.equal(batches[0]?.header?.creationDate, '2026-11-11T03:00:00Z');
  const u = batches.flatMap((b) => b.updates)[0]!;
  assert.equal(u.updateId, 'a0000000-0000-0000-0000-000000000001', 'GUIDs are lower-cased');
  assert.equal(u.deploymentAction, 'Bundle');
  assert.deepEqual(
    u.prerequisites.map((p) => [p.updateId.slice(-1), p.orGroup]),
    [
      ['1', null],
      ['2', 1],
      ['3', 1],
      ['4', 2],
    ],
  );
  assert.deepEqual(u.bundledBy, [11]);
  assert.deepEqual(u.supersededBy, [12, 13]);
  assert.deepEqual(u.payloadFiles, ['fQTAfvF3nDnhdPA/eUmJ+CSM/3Q=']);
  assert.deepEqual(
    batches.flatMap((b) => b.fileLocations),
    [
      {
        id: 'fQTAfvF3nDnhdPA/eUmJ+CSM/3Q=',
        url: 'http://download.windowsupdate.com/d/x_7d04c07e.cab',
        isIncluded: false,
      },
    ],
  );
});

test('a prefixed OfflineSync root is the same catalog', async () => {
  const xml = `<o:OfflineSyncPackage xmlns:o="${OFFLINE_SYNC_NS}" PackageId="p1"><o:Updates><o:Update UpdateId="00000000-0000-0000-0000-000000000001" RevisionId="7" RevisionNumber="1"><o:SupersededBy><o:Revision Id="8"/></o:SupersededBy></o:Update></o:Updates></o:OfflineSyncPackage>`;
  const updates = await allUpdates(Readable.from([xml]));
  assert.deepEqual(
    updates.map((u) => [u.revisionId, u.supersededBy]),
    [[7, [8]]],
  );
  await assert.rejects(
    allUpdates(
      Readable.from([
        `<o:OfflineSyncPackage xmlns:o="${OFFLINE_SYNC_NS}"><x:Updates xmlns:x="urn:x"/></o:OfflineSyncPackage>`,
      ]),
    ),
    /outside/,
  );
});

test('package.xml that is not a catalog is rejected with a reason', async () => {
  await assert.rejects(allUpdates(Readable.from(['<Foo/>'])), /not <OfflineSyncPackage>/);
  await assert.rejects(allUpdates(Readable.from(['<OfflineSyncPackage xmlns="urn:other"/>'])), /unexpected namespace/);
  await assert.rejects(
    allUpdates(Readable.from(['<OfflineSyncPackage><Updates><Update RevisionId="x"/></Updates></OfflineSyncPackage>'])),
    /lacks UpdateId/,
  );
  await assert.rejects(allUpdates(Readable.from(['<OfflineSyncPackage><Updates>'])), /not well-formed/);
});

test('batches are bounded by the batch size', async () => {
  const many = Array.from(
    { length: 25 },
    (_, i) =>
      `<Update UpdateId="00000000-0000-0000-0000-${String(i).padStart(12, '0')}" RevisionId="${i}" RevisionNumber="1"/>`,
  ).join('');
  const sizes: number[] = [];
  for await (const b of readPackageXml(
    Readable.from([
      `<OfflineSyncPackage><Updates>`,
      ...many.match(/<Update[^>]*>/g)!,
      `</Updates></OfflineSyncPackage>`,
    ]),
    { batchSize: 10 },
  ))
    sizes.push(b.updates.length);
  assert.deepEqual(sizes, [10, 10, 5]);
});

test('index.xml of the fixture: shards by RANGESTART', { skip }, async () => {
  const index = parseIndexXml(await readFile(join(EXTRACTED, 'index.xml'), 'utf8'));
  assert.deepEqual(
    index.shards.map((s) => [s.name, s.rangeStart]),
    [
      ['package2.cab', 0],
      ['package3.cab', 234568],
    ],
  );
  assert.equal(index.cabs[0]?.name, 'package.cab');
  assert.equal(shardFor(index, 123456), 'package2.cab');
  assert.equal(shardFor(index, 234567), 'package2.cab');
  assert.equal(shardFor(index, 234568), 'package3.cab');
  assert.equal(shardFor(index, 345678), 'package3.cab');
  const round = parseIndexXml(
    renderIndexXml([
      { name: 'package2.cab', rangeStart: 0 },
      { name: 'package3.cab', rangeStart: 500 },
    ]),
  );
  assert.deepEqual(
    round.shards.map((s) => [s.name, s.rangeStart, s.filesDir]),
    [
      ['package2.cab', 0, true],
      ['package3.cab', 500, false],
    ],
  );
});

const shardOf = (rev: string) => (Number(rev) >= 234568 ? 'package3' : 'package2');

for (const rev of ['123456', '234567', '345678']) {
  test(`shard blobs of revision ${rev} map as vuls golden c/x/l say`, { skip }, async () => {
    const dir = join(EXTRACTED, shardOf(rev));
    const x = parseExtendedBlob(await readFile(join(dir, 'x', rev), 'utf8'));
    const gx = await golden('x', rev);
    assert.equal(x.kb, (gx.kbarticleid as { text: string }).text);
    assert.equal(x.msrcSeverity, gx.msrcseverity);
    assert.equal(x.securityBulletinId, (gx.securitybulletinid as { text: string }).text);
    assert.equal(x.supportUrl, (gx.supporturl as { text: string }).text);
    assert.equal(x.isBeta, gx.isbeta === 'true');

    const l = parseLocalizedBlob(await readFile(join(dir, 'l', 'en', rev), 'utf8'));
    const gl = await golden('l', rev);
    assert.equal(l.title, (gl.title as { text: string }).text);
    assert.equal(l.description, (gl.description as { text: string }).text);
    assert.equal(l.language, 'en');

    const c = parseCoreBlob(await readFile(join(dir, 'c', rev), 'utf8'));
    const gc = await golden('c', rev);
    const identity = gc.updateidentity as { updateid: string; revisionnumber: string };
    assert.equal(c.updateId, identity.updateid);
    assert.equal(String(c.revisionNumber), identity.revisionnumber);
    assert.equal(c.updateType, (gc.properties as { updatetype: string }).updatetype);
    const rel = gc.relationships as {
      supersededupdates?: { updateidentity: { updateid: string }[] };
      prerequisites?: { atleastone?: { updateidentity: { updateid: string }[] }[] };
    };
    assert.deepEqual(
      c.supersededUpdateIds,
      (rel.supersededupdates?.updateidentity ?? []).map((u) => u.updateid),
    );
    // vuls keeps only the AtLeastOne groups; every one of them must be an "one of" group here.
    const groups = (rel.prerequisites?.atleastone ?? []).map((g) => g.updateidentity.map((u) => u.updateid));
    const mine = [...new Set(c.prerequisites.filter((p) => p.orGroup !== null).map((p) => p.orGroup))].map((g) =>
      c.prerequisites.filter((p) => p.orGroup === g).map((p) => p.updateId),
    );
    assert.deepEqual(mine, groups);
  });
}

test('the x/ blob with a payload file: digest, name, size, SHA-256, reboot behaviour', { skip }, async () => {
  const x = parseExtendedBlob(await readFile(join(EXTRACTED, 'package2', 'x', '000001'), 'utf8'));
  assert.equal(x.rebootBehavior, 'CanRequestReboot');
  assert.equal(x.maxDownloadSize, 5428536);
  assert.deepEqual(x.files, [
    {
      digest: 'fQTAfvF3nDnhdPA/eUmJ+CSM/3Q=',
      digestAlgorithm: 'SHA1',
      fileName: 'vviewersp1-zh-cn.cab',
      size: 5428536,
      modified: '2011-06-22T10:24:53.617Z',
      sha256: 'Rq5QeQ4tcNyFF+BLmad694ramk3yoahUzG2EXulIQT0=',
    },
  ]);
  const c = parseCoreBlob(await readFile(join(EXTRACTED, 'package2', 'c', '123456'), 'utf8'));
  assert.deepEqual(c.bundledUpdateIds, ['daad7390-d95c-4fd5-99a0-790dc6a2dc2a']);
  assert.deepEqual(
    c.prerequisites.filter((p) => p.orGroup === null).map((p) => p.updateId),
    ['04437cf2-2157-44c9-96df-6cd88b0dc541', '59653007-e2e9-4f71-8525-2ff588527978'],
  );
});

test('the quick UpdateType scan agrees with the full core parse', { skip }, async () => {
  const { coreUpdateType } = await import('./shards.ts');
  for (const [shard, rev] of [
    ['package2', '123456'],
    ['package2', '234567'],
    ['package3', '345678'],
  ] as const) {
    const text = await readFile(join(EXTRACTED, shard, 'c', rev), 'utf8');
    assert.equal(coreUpdateType(text), parseCoreBlob(text).updateType);
  }
  assert.equal(
    coreUpdateType(`<UpdateIdentity UpdateID="x"/><Properties ExplicitlyDeployable='true' UpdateType='Detectoid'/>`),
    'Detectoid',
  );
  assert.equal(
    coreUpdateType('<p:Properties xmlns:p="urn:x" p:UpdateType="Driver"/>'),
    'Driver',
    'falls back to the full parse',
  );
  assert.equal(coreUpdateType('<UpdateIdentity UpdateID="x"/>'), null);
});

test('blob names, with either separator', () => {
  assert.deepEqual(parseBlobName('c\\123'), { kind: 'c', language: null, revisionId: 123 });
  assert.deepEqual(parseBlobName('l/EN/45'), { kind: 'l', language: 'en', revisionId: 45 });
  assert.deepEqual(parseBlobName('x/000002'), { kind: 'x', language: null, revisionId: 2 });
  assert.equal(parseBlobName('index.xml'), null);
  assert.equal(parseBlobName('l/123'), null);
});

test('search text builders: FTS quoting, PostgreSQL word patterns, LIKE escaping, date bounds', () => {
  assert.equal(ftsQuery(' cumulative  update '), '"cumulative"* "update"*');
  assert.equal(ftsQuery('say "hi"'), '"say"* """hi"""*');
  assert.equal(ftsQuery('   '), null);
  assert.deepEqual(likePatterns('100% net_fx'), ['%100\\%%', '%net\\_fx%']);
  assert.deepEqual(wordPatterns(' Cumul  x64-based .NET (KB50 -- '), [
    '\\mCumul',
    '\\mx64[^[:alnum:]]+based',
    '\\mNET',
    '\\mKB50',
  ]);
  assert.equal(dateBound('2026-10-01', 'since'), '2026-10-01T00:00:00Z');
  assert.equal(dateBound('2026-10-31', 'until'), '2026-10-31T23:59:59.999Z');
  assert.throws(() => dateBound('last tuesday', 'since'), /not a date/);
});
