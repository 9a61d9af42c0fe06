import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseList, selectUpdates, unmatchedFilterValues, type UpdateFilters } from './filters.ts';
import type { UpdateRecord } from './update.ts';

const now = new Date('2026-11-21T00:00:00Z');
function update(key: string, over: Partial<UpdateRecord> = {}): UpdateRecord {
  return {
    updateId: `00000000-0000-0000-0000-${key.padStart(12, '0')}`,
    revisionNumber: 1,
    title: `Update ${key}`,
    kbs: [key],
    msrcSeverity: 'Critical',
    classification: 'Security Updates',
    products: ['Windows Server 2022'],
    categories: [],
    isDownloaded: false,
    isHidden: false,
    isMandatory: false,
    browseOnly: false,
    type: 'software',
    rebootBehavior: 'never',
    impact: 'normal',
    eulaAccepted: true,
    supersededUpdateIds: [],
    maxDownloadSize: 1,
    lastDeploymentChangeTime: '2026-11-11T00:00:00Z',
    supportUrl: null,
    downloadUrls: [],
    ...over,
  };
}

const scan = [
  update('5044444'),
  update('5044445', {
    classification: 'Critical Updates',
    msrcSeverity: null,
    title: '2026-11 Cumulative Update for .NET',
  }),
  update('5044446', { browseOnly: true, title: 'Optional preview' }),
  update('5044447', { type: 'driver', classification: 'Drivers', title: 'Intel NIC driver' }),
  update('5044448', { products: ['Windows Server 2019'], lastDeploymentChangeTime: '2026-11-20T00:00:00Z' }),
  update('5044449', { isHidden: true }),
];

const cases: [string, UpdateFilters, string[]][] = [
  ['defaults leave out optional, drivers and hidden', {}, ['5044444', '5044445', '5044448']],
  ['classification', { classifications: ['critical updates'] }, ['5044445']],
  ['severity none matches updates without one', { severities: ['none'] }, ['5044445']],
  ['product', { products: ['Windows Server 2019'] }, ['5044448']],
  ['kb include names even an optional update', { kbs: ['5044446'] }, ['5044446']],
  ['exclude kb wins over include', { kbs: ['5044444', '5044445'], excludeKbs: ['5044444'] }, ['5044445']],
  ['title regex, case-insensitive', { title: 'cumulative' }, ['5044445']],
  [
    'include drivers and optional',
    { includeDrivers: true, includeOptional: true },
    ['5044444', '5044445', '5044446', '5044447', '5044448'],
  ],
  ['min age', { minAgeDays: 3 }, ['5044444', '5044445']],
  [
    'combined',
    { classifications: ['Security Updates'], products: ['Windows Server 2022'], minAgeDays: 1 },
    ['5044444'],
  ],
];

for (const [name, filters, expected] of cases) {
  test(`filter: ${name}`, () => {
    const { selected, skipped } = selectUpdates(scan, filters, now);
    assert.deepEqual(
      selected.map((u) => u.kbs[0]),
      expected,
    );
    assert.equal(selected.length + skipped.length, scan.length);
  });
}

test('every skipped update carries the reason that left it out', () => {
  const { skipped } = selectUpdates(scan, { classifications: ['Security Updates'] }, now);
  const reasons = Object.fromEntries(skipped.map((s) => [s.update.kbs[0], s.reason]));
  assert.deepEqual(reasons, {
    '5044445': 'classification',
    '5044446': 'optional',
    '5044447': 'driver',
    '5044449': 'hidden',
  });
});

test('list files: KB prefix optional, comments, commas, duplicates folded, bad lines reported', () => {
  assert.deepEqual(parseList('\uFEFFKB5044444\r\n# comment\nkb 5043050, 5044444\n', 'kb'), {
    items: ['5044444', '5043050'],
    invalid: [],
  });
  assert.deepEqual(parseList('KB50x\n', 'kb').invalid, [{ line: 1, text: 'KB50x' }]);
  assert.deepEqual(parseList('{8B2A6F3E-0000-4000-8000-00000000ABCD}', 'guid').items, [
    '8b2a6f3e-0000-4000-8000-00000000abcd',
  ]);
});

test('a filter value that matched no update on any host is named, with the values the scans saw', () => {
  const found = [
    update('5044445'),
    update('2267602', {
      products: ['Windows Server 2022', 'Microsoft Defender Antivirus'],
      classification: 'Definition Updates',
      msrcSeverity: null,
    }),
  ];
  assert.deepEqual(
    unmatchedFilterValues(
      {
        products: ['Windows Server 2002', 'windows server 2022'],
        kbs: ['5044445', '5099999'],
        severities: ['Critical'],
      },
      found,
    ),
    [
      {
        option: '--product',
        values: ['Windows Server 2002'],
        seen: ['Microsoft Defender Antivirus', 'Windows Server 2022'],
      },
      { option: '--kb', values: ['5099999'], seen: ['KB2267602', 'KB5044445'] },
    ],
  );
  assert.deepEqual(
    unmatchedFilterValues({ excludeKbs: ['1234567'] }, found),
    [],
    'exclusions that match nothing are harmless',
  );
  assert.deepEqual(unmatchedFilterValues({ classifications: ['Drivers'] }, []), [
    { option: '--classification', values: ['Drivers'], seen: [] },
  ]);
});
