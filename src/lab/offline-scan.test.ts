/**
 * Unit tests of the offline scan's rules on a hand-written catalog (package.xml and c/x/l blobs as
 * Microsoft shapes them): product categories, prerequisites with "one of" groups and detectoids,
 * supersedence through RevisionIds with chains, bundles reported instead of their members,
 * revisions, languages; and the per-process cache.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderIndexXml } from '../catalog/index-xml.ts';
import { OFFLINE_SYNC_NS } from '../catalog/package-xml.ts';
import type { CatalogSource } from '../catalog/source.ts';
import {
  buildOfflineCatalog,
  createOfflineCatalogCache,
  offlineApplicable,
  offlineHostOf,
  offlineInstalled,
  offlineNotApplicableReason,
  searchOfflineCab,
  type OfflineCatalog,
  type OfflineHost,
} from './offline-scan.ts';
import { initialHostState } from './host-state.ts';
import { parseScenario } from './scenario.ts';

const guid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const ID = {
  os1: guid(1),
  os2: guid(2),
  security: guid(3),
  family: guid(4),
  company: guid(5),
  detectoid: guid(6),
  ssu: guid(10),
  cu: guid(11),
  cuMember: guid(12),
  cuOld: guid(13),
  cuOldest: guid(14),
  net: guid(15),
  needsDetectoid: guid(16),
  revised: guid(17),
  orphan: guid(18),
  driver: guid(19),
  german: guid(20),
} as const;
const FILE = { cu: 'Y3UtcGF5bG9hZC1zaGExLWJhc2U2NC0=', ssu: 'c3N1LXBheWxvYWQtc2hhMS1iYXNlNjQ=' } as const;

interface Entry {
  readonly rev: number;
  readonly id: string;
  readonly attrs?: string;
  /** Inner XML of <Update>. */
  readonly body?: string;
  readonly c?: string;
  readonly x?: string;
  readonly l?: Readonly<Record<string, string>>;
}

const cats = (...list: [string, string][]): string =>
  `<Categories>${list.map(([type, id]) => `<Category Type="${type}" Id="${id}"/>`).join('')}</Categories>`;
const os1Cats = cats(
  ['UpdateClassification', ID.security],
  ['Product', ID.os1],
  ['Company', ID.company],
  ['ProductFamily', ID.family],
);
const os2Cats = cats(['UpdateClassification', ID.security], ['Product', ID.os2]);
const title = (t: string): Record<string, string> => ({
  en: `<LocalizedProperties><Language>en</Language><Title>${t}</Title></LocalizedProperties>`,
});
const core = (type: string, extra = ''): string =>
  `<UpdateIdentity UpdateID="x" RevisionNumber="1"/><Properties UpdateType="${type}"/><Relationships>${extra}</Relationships>`;
const category = (rev: number, id: string, name: string, body = ''): Entry => ({
  rev,
  id,
  attrs: 'DeploymentAction="Evaluate"',
  body,
  c: core('Category'),
  l: title(name),
});

const ENTRIES: readonly Entry[] = [
  category(10, ID.os1, 'Contoso OS 1', `<Prerequisites><UpdateId Id="${ID.family}"/></Prerequisites>`),
  category(11, ID.os2, 'Contoso OS 2'),
  category(12, ID.security, 'Security Updates'),
  category(13, ID.family, 'Contoso'),
  category(14, ID.company, 'Contoso Ltd'),
  {
    rev: 20,
    id: ID.detectoid,
    attrs: 'DeploymentAction="Evaluate"',
    c: core('Detectoid'),
    l: title('Has the Contoso agent'),
  },
  {
    rev: 100,
    id: ID.ssu,
    attrs: 'IsBundle="true" IsLeaf="true"',
    body: `${os1Cats}<PayloadFiles><File Id="${FILE.ssu}"/></PayloadFiles>`,
    c: core('Software'),
    x: '<ExtendedProperties MaxDownloadSize="700" MsrcSeverity="Critical"><InstallationBehavior RebootBehavior="NeverReboots" Impact="RequiresExclusiveHandling"/><KBArticleID>1000001</KBArticleID></ExtendedProperties>',
    l: title('Servicing stack update (KB1000001)'),
  },
  // A bundle: its payload and reboot behaviour live in its member.
  {
    rev: 101,
    id: ID.cu,
    attrs: 'IsBundle="true" CreationDate="2026-11-10T08:00:00Z"',
    body: `${os1Cats}<Prerequisites><UpdateId Id="${ID.ssu}"/><Or><UpdateId Id="${ID.os1}"/><UpdateId Id="${ID.os2}"/></Or></Prerequisites>`,
    c: core('Software'),
    x: '<ExtendedProperties MaxDownloadSize="0" MsrcSeverity="Important"><SupportUrl>https://example.test/kb1000002</SupportUrl><KBArticleID>1000002</KBArticleID></ExtendedProperties>',
    l: title('Cumulative update (KB1000002)'),
  },
  {
    rev: 102,
    id: ID.cuMember,
    attrs: 'IsLeaf="true"',
    body: `<BundledBy><Revision Id="101"/></BundledBy><PayloadFiles><File Id="${FILE.cu}"/></PayloadFiles>`,
    c: core('Software'),
    x: '<ExtendedProperties MaxDownloadSize="5000"><InstallationBehavior RebootBehavior="AlwaysRequiresReboot"/></ExtendedProperties>',
    l: title('member'),
  },
  {
    rev: 103,
    id: ID.cuOld,
    body: `${os1Cats}<SupersededBy><Revision Id="101"/></SupersededBy>`,
    c: core('Software'),
    l: title('October CU'),
  },
  {
    rev: 104,
    id: ID.cuOldest,
    body: `${os1Cats}<SupersededBy><Revision Id="103"/></SupersededBy>`,
    c: core('Software'),
    l: title('September CU'),
  },
  // Needs the family (which the product requires) and one of the SSU or the CU.
  {
    rev: 105,
    id: ID.net,
    body: `${os1Cats}<Prerequisites><UpdateId Id="${ID.family}"/><Or><UpdateId Id="${ID.ssu}"/><UpdateId Id="${ID.cu}"/></Or></Prerequisites>`,
    c: core('Software'),
    l: title('.NET update'),
  },
  {
    rev: 106,
    id: ID.needsDetectoid,
    body: `${os1Cats}<Prerequisites><UpdateId Id="${ID.detectoid}"/></Prerequisites>`,
    c: core('Software'),
    l: title('Agent update'),
  },
  // Two revisions of one update: the newer (RevisionNumber 2) moved it to OS 2.
  {
    rev: 107,
    id: ID.revised,
    attrs: 'RevisionNumber="1"',
    body: os1Cats,
    c: core('Software'),
    l: title('Revised update, revision 1'),
  },
  {
    rev: 108,
    id: ID.revised,
    attrs: 'RevisionNumber="2"',
    body: os2Cats,
    c: core('Software'),
    l: title('Revised update, revision 2'),
  },
  {
    rev: 109,
    id: ID.orphan,
    body: `${os1Cats}<SupersededBy><Revision Id="999"/></SupersededBy>`,
    c: core('Software'),
    l: title('Superseded by something not in the cab'),
  },
  {
    rev: 110,
    id: ID.driver,
    body: os2Cats,
    c: core('Driver'),
    x: '<ExtendedProperties MaxDownloadSize="12"><InstallationBehavior RebootBehavior="CanRequestReboot"/></ExtendedProperties>',
    l: title('NIC driver'),
  },
  {
    rev: 111,
    id: ID.german,
    attrs: 'DefaultLanguage="de"',
    body: os2Cats,
    c: core('Software'),
    l: {
      en: title('English title').en!,
      de: '<LocalizedProperties><Language>de</Language><Title>Deutscher Titel</Title></LocalizedProperties>',
    },
  },
];

const URL_OF = {
  [FILE.cu]: 'http://download.windowsupdate.com/d/cu.msu',
  [FILE.ssu]: 'http://download.windowsupdate.com/d/ssu.msu',
};

/** A CatalogSource over the entries: one shard from 0, a second from RevisionId 105. */
function sourceOf(entries: readonly Entry[]): CatalogSource {
  const updates = entries.map(
    (e) =>
      `<Update UpdateId="${e.id}" RevisionId="${e.rev}"${e.attrs?.includes('RevisionNumber') ? '' : ' RevisionNumber="1"'}${e.attrs?.includes('DefaultLanguage') ? '' : ' DefaultLanguage="en"'} ${e.attrs ?? ''}>${e.body ?? ''}</Update>`,
  );
  const locations = Object.entries(URL_OF).map(
    ([id, url]) => `<FileLocation Id="${id}" Url="${url}" IsIncluded="false"/>`,
  );
  const xml = `<?xml version="1.0" encoding="utf-8"?><OfflineSyncPackage xmlns="${OFFLINE_SYNC_NS}" PackageId="pkg-1" CreationDate="2026-11-20T00:00:00Z"><Updates>${updates.join('')}</Updates><FileLocations>${locations.join('')}</FileLocations></OfflineSyncPackage>`;
  const shards = [
    { name: 'package2.cab', rangeStart: 0 },
    { name: 'package3.cab', rangeStart: 105 },
  ];
  const opened: string[] = [];
  return {
    description: 'hand-written',
    indexXml: async () => renderIndexXml(shards),
    async *packageXml() {
      // Two pieces, split inside an element: the parser must stream.
      yield Buffer.from(xml.slice(0, 700));
      yield Buffer.from(xml.slice(700));
    },
    async *shardBlobs(name) {
      opened.push(name);
      const [from, to] = name === 'package2.cab' ? [0, 105] : [105, Infinity];
      for (const e of entries.filter((x) => x.rev >= from && x.rev < to)) {
        if (e.c) yield { name: `c\\${e.rev}`, bytes: Buffer.from(e.c) };
        if (e.x) yield { name: `x\\${e.rev}`, bytes: Buffer.from(e.x) };
        for (const [lang, text] of Object.entries(e.l ?? {}))
          yield { name: `l\\${lang}\\${e.rev}`, bytes: Buffer.from(text) };
      }
    },
    close: async () => {},
  };
}

const catalogPromise = buildOfflineCatalog(sourceOf(ENTRIES), { cabPath: '/lab/wsusscn2.cab', signerSubject: null });
const host = (
  product: string,
  installed: readonly string[] = [],
  rebootPending: readonly string[] = [],
): OfflineHost => ({
  product,
  installedUpdateIds: [...installed, ...rebootPending],
  rebootDoneIds: installed,
});
const ids = (catalog: OfflineCatalog, h: OfflineHost): string[] => offlineApplicable(catalog, h).map((u) => u.updateId);

describe('offline scan: applicability from the cab alone', () => {
  it('leaves out categories, detectoids and bundle members, and warns about unknown superseding revisions', async () => {
    const catalog = await catalogPromise;
    assert.deepEqual(catalog.skipped, { categories: 5, detectoids: 1, bundleMembers: 1 });
    assert.deepEqual(
      catalog.updates.map((u) => u.updateId),
      [ID.ssu, ID.cu, ID.cuOld, ID.cuOldest, ID.net, ID.needsDetectoid, ID.revised, ID.orphan, ID.driver, ID.german],
    );
    assert.deepEqual(catalog.warnings, [
      `1 SupersededBy reference(s) name revisions the cab does not contain (ignored): ${ID.orphan} → 999`,
    ]);
    assert.equal(catalog.packageId, 'pkg-1');
    assert.equal(catalog.categories.get(ID.os1)?.name, 'Contoso OS 1');
    assert.equal(catalog.categories.get(ID.os1)?.type, 'Product');
  });

  const cases: readonly { name: string; host: OfflineHost; expected: readonly string[] }[] = [
    {
      name: 'a fresh OS 1 host: no prerequisites met yet, nothing superseded',
      host: host('Contoso OS 1'),
      expected: [ID.ssu, ID.cuOld, ID.cuOldest, ID.orphan],
    },
    {
      name: 'the product name matches case-insensitively',
      host: host('contoso os 1'),
      expected: [ID.ssu, ID.cuOld, ID.cuOldest, ID.orphan],
    },
    {
      name: 'after the SSU: the CU (all + one-of prerequisites) and .NET (one of SSU/CU, family via the product) appear',
      host: host('Contoso OS 1', [ID.ssu]),
      expected: [ID.cu, ID.cuOld, ID.cuOldest, ID.net, ID.orphan],
    },
    {
      name: 'an SSU still waiting for its reboot satisfies nothing',
      host: host('Contoso OS 1', [], [ID.ssu]),
      expected: [ID.cuOld, ID.cuOldest, ID.orphan],
    },
    {
      name: 'the installed CU supersedes October and, through it, September',
      host: host('Contoso OS 1', [ID.ssu], [ID.cu]),
      expected: [ID.net, ID.orphan],
    },
    {
      name: 'a detectoid the host has satisfies its prerequisite',
      host: host('Contoso OS 1', [ID.ssu, ID.detectoid]),
      expected: [ID.cu, ID.cuOld, ID.cuOldest, ID.net, ID.needsDetectoid, ID.orphan],
    },
    {
      name: 'OS 2: the latest revision counts, drivers are updates too',
      host: host('Contoso OS 2'),
      expected: [ID.revised, ID.driver, ID.german],
    },
    { name: 'a product the cab does not know: nothing', host: host('Windows 3.1'), expected: [] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      assert.deepEqual(ids(await catalogPromise, c.host), c.expected);
    });
  }

  it('says why an update is not applicable', async () => {
    const catalog = await catalogPromise;
    const fresh = host('Contoso OS 1');
    assert.equal(offlineNotApplicableReason(catalog, fresh, ID.cu), 'prerequisite');
    assert.equal(offlineNotApplicableReason(catalog, fresh, ID.driver), 'product');
    assert.equal(offlineNotApplicableReason(catalog, host('Contoso OS 1', [ID.ssu]), ID.ssu), 'installed');
    assert.equal(offlineNotApplicableReason(catalog, host('Contoso OS 1', [ID.ssu, ID.cu]), ID.cuOldest), 'superseded');
    assert.equal(offlineNotApplicableReason(catalog, fresh, ID.ssu), null);
    assert.equal(
      offlineNotApplicableReason(catalog, fresh, ID.cuMember),
      undefined,
      'a bundle member is never reported',
    );
  });

  it("lists the installed updates of the host's product", async () => {
    const catalog = await catalogPromise;
    assert.deepEqual(
      offlineInstalled(catalog, host('Contoso OS 1', [ID.ssu, ID.driver])).map((u) => u.updateId),
      [ID.ssu],
    );
  });
});

describe('offline scan: update records filled from the cab', () => {
  it("reports a bundle with its member's payload, size and reboot behaviour", async () => {
    const catalog = await catalogPromise;
    const [cu] = offlineApplicable(catalog, {
      ...host('Contoso OS 1', [ID.ssu]),
      downloadedIds: [ID.cu.toUpperCase()],
      hiddenIds: [],
    }).filter((u) => u.updateId === ID.cu);
    assert.ok(cu);
    assert.equal(cu.title, 'Cumulative update (KB1000002)');
    assert.deepEqual(cu.kbs, ['1000002']);
    assert.equal(cu.msrcSeverity, 'Important');
    assert.equal(cu.classification, 'Security Updates');
    assert.deepEqual(cu.products, ['Contoso OS 1']);
    assert.deepEqual(
      cu.categories.map((c) => [c.type, c.name]),
      [
        ['UpdateClassification', 'Security Updates'],
        ['Product', 'Contoso OS 1'],
        ['Company', 'Contoso Ltd'],
        ['ProductFamily', 'Contoso'],
      ],
    );
    assert.equal(cu.rebootBehavior, 'always');
    assert.equal(cu.maxDownloadSize, 5000);
    assert.deepEqual(cu.downloadUrls, ['http://download.windowsupdate.com/d/cu.msu']);
    assert.deepEqual(cu.supersededUpdateIds, [ID.cuOld], 'from SupersededBy, resolved to UpdateIds');
    assert.equal(cu.lastDeploymentChangeTime, '2026-11-10T08:00:00.000Z');
    assert.equal(cu.supportUrl, 'https://example.test/kb1000002');
    assert.equal(cu.isDownloaded, true);
    assert.equal(cu.isHidden, false);
  });

  it('reads severity, exclusive impact and reboot from the x/ blob, the title in the default language, the type from c/', async () => {
    const catalog = await catalogPromise;
    const [ssu] = offlineApplicable(catalog, host('Contoso OS 1'));
    assert.deepEqual(
      [ssu?.msrcSeverity, ssu?.impact, ssu?.rebootBehavior, ssu?.maxDownloadSize, ssu?.type],
      ['Critical', 'exclusive', 'never', 700, 'software'],
    );
    const os2 = offlineApplicable(catalog, host('Contoso OS 2'));
    assert.deepEqual(
      os2.map((u) => [u.title, u.type, u.rebootBehavior]),
      [
        ['Revised update, revision 2', 'software', 'never'],
        ['NIC driver', 'driver', 'canRequest'],
        ['Deutscher Titel', 'software', 'never'],
      ],
    );
  });
});

describe('offline scan: the provider search', () => {
  const scenario = parseScenario(
    `
catalog:
  - { key: a, title: A, classification: Updates, products: [P], released: 2026-11-01 }
hosts:
  - { name: h1, product: P, installed: [a] }
`,
    'inline.yaml',
  );
  const h1 = scenario.hostByName.get('h1')!;

  it("maps the host state's keys to UpdateIds", () => {
    const state = { ...initialHostState(h1, new Date('2026-11-20T00:00:00Z'), 1), hidden: ['a'] };
    const view = offlineHostOf(scenario, h1, state);
    const a = scenario.byKey.get('a')!.updateId;
    assert.deepEqual(
      [[...view.installedUpdateIds], [...view.rebootDoneIds], [...(view.hiddenIds ?? [])]],
      [[a], [a], [a]],
    );
  });

  it('fails like WUA without a cab path, with bad criteria, and with a missing cab', async () => {
    const state = initialHostState(h1, new Date('2026-11-20T00:00:00Z'), 1);
    const base = { id: 's1', type: 'search', criteria: 'IsInstalled=0', serverSelection: 'offline' } as const;
    const noPath = await searchOfflineCab(base, { scenario, host: h1, state });
    assert.deepEqual([noPath.resultCode, noPath.hresult], ['failed', '0x80070057']);
    const badCriteria = await searchOfflineCab(
      { ...base, criteria: "CategoryIDs contains 'x'", offlineCabPath: '/nowhere/wsusscn2.cab' },
      { scenario, host: h1, state },
    );
    assert.equal(badCriteria.hresult, '0x80240032');
    const missing = await searchOfflineCab(
      { ...base, offlineCabPath: '/nowhere/wsusscn2.cab' },
      { scenario, host: h1, state },
    );
    assert.deepEqual([missing.resultCode, missing.hresult], ['failed', '0x80070002']);
    assert.match(missing.type === 'result' ? (missing.message ?? '') : '', /local disk/);
  });
});

describe('offline catalog cache', () => {
  const fake = (name: string): OfflineCatalog => ({
    cabPath: name,
    signerSubject: null,
    packageId: null,
    creationDate: null,
    updates: [],
    categories: new Map(),
    supersedes: new Map(),
    skipped: { categories: 0, detectoids: 0, bundleMembers: 0 },
    warnings: [],
  });

  it('shares one build between concurrent callers and keeps it', async () => {
    const cache = createOfflineCatalogCache(2);
    let builds = 0;
    const build = async () => {
      builds++;
      return fake('a');
    };
    const [one, two] = await Promise.all([cache.get('a', build), cache.get('a', build)]);
    assert.equal(one, two);
    assert.equal(await cache.get('a', build), one);
    assert.equal(builds, 1);
  });

  it('forgets failures, so a fixed cab is read again', async () => {
    const cache = createOfflineCatalogCache(2);
    await assert.rejects(
      cache.get('a', async () => {
        throw new Error('unsigned');
      }),
      /unsigned/,
    );
    assert.equal((await cache.get('a', async () => fake('fixed'))).cabPath, 'fixed');
  });

  it('keeps only the most recently used catalogs', async () => {
    const cache = createOfflineCatalogCache(2);
    let builds = 0;
    const build = (name: string) => async () => {
      builds++;
      return fake(name);
    };
    await cache.get('a', build('a'));
    await cache.get('b', build('b'));
    await cache.get('a', build('a'));
    await cache.get('c', build('c'));
    assert.equal(cache.size, 2);
    await cache.get('a', build('a'));
    assert.equal(builds, 3, 'a was used recently, so b was dropped instead');
    await cache.get('b', build('b'));
    assert.equal(builds, 4);
  });
});
