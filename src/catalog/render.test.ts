/** Text output of `patchline catalog …`: aligned columns, hints, and detail sections. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable, renderDetails, renderHits, renderStatus } from './render.ts';
import type { CatalogHit } from './query.ts';
import type { CatalogUpdateDetails } from './update-details.ts';

const hit: CatalogHit = {
  updateId: '11111111-1111-1111-1111-111111111111',
  revisionId: 7,
  revisionNumber: 1,
  kb: '5044444',
  title: 'CU (KB5044444)',
  classification: 'Security Updates',
  products: ['Windows Server 2022'],
  severity: 'Critical',
  releaseDate: '2026-11-11T00:00:00Z',
  updateType: 'Software',
};

test('tables align every column to its widest cell', () => {
  assert.equal(
    formatTable(
      ['A', 'BB'],
      [
        ['xxx', 'y'],
        ['z', 'long value'],
      ],
    ),
    'A    BB\nxxx  y\nz    long value',
  );
});

test('search output: one row per hit, and a hint when the limit cut the list', () => {
  const text = renderHits([hit], 1);
  assert.match(text, /^KB\s+RELEASED/);
  assert.match(text, /KB5044444 {2}2026-11-11 {2}Critical {2}Security Updates {2}Windows Server 2022 {2}1{8}-/);
  assert.match(text, /first 1 shown; narrow the search or raise --limit/);
  assert.doesNotMatch(renderHits([hit], 50), /first/);
  assert.equal(renderHits([], 50), 'No updates match.');
});

test('status without a catalog says how to get one', () => {
  assert.match(
    renderStatus({ current: null, previous: null, importing: null }),
    /patchline catalog sync.*patchline catalog import FILE\.cab/,
  );
});

test('details: "one of" prerequisite groups, chains indented by depth, files with digests and URL', () => {
  const d: CatalogUpdateDetails = {
    ...hit,
    description: null,
    categories: [],
    creationDate: null,
    isBundle: true,
    isLeaf: true,
    rebootBehavior: 'AlwaysRequiresReboot',
    impact: 'Normal',
    browseOnly: false,
    maxDownloadSize: 10,
    supportUrl: null,
    moreInfoUrl: null,
    moreInfoUrls: [],
    cveIds: [],
    securityBulletinId: null,
    prerequisites: [
      { kind: 'all', updates: [{ updateId: 'a', revisionId: 1, kb: '1', title: 'SSU' }] },
      {
        kind: 'oneOf',
        updates: [
          { updateId: 'p1', revisionId: 2, kb: null, title: 'Windows Server 2022' },
          { updateId: 'p2', revisionId: null, kb: null, title: null },
        ],
      },
    ],
    bundleMembers: [],
    bundledBy: [],
    supersedes: [
      { updateId: 'o1', revisionId: 3, kb: '2', title: 'Older', depth: 1 },
      { updateId: 'o2', revisionId: 4, kb: '3', title: 'Oldest', depth: 2 },
    ],
    supersededBy: [],
    files: [{ id: 'q', fileName: 'f.msu', size: 10, sha1: 'q', sha256: 'r', url: 'http://u/f.msu' }],
    titles: [],
  };
  const text = renderDetails(d);
  assert.match(
    text,
    /Prerequisites:\n {2}KB1 SSU {2}a\n {2}one of: Windows Server 2022 {2}p1 \| \(not in catalog\) {2}p2\n/,
  );
  assert.match(text, /Supersedes:\n {2}KB2 Older {2}o1\n {4}KB3 Oldest {2}o2/);
  assert.match(text, /Files:\n {2}f\.msu {2}10 bytes {2}sha1 q {2}sha256 r {2}http:\/\/u\/f\.msu/);
  assert.doesNotMatch(text, /Superseded by/);
});

test('details: every CVE and every MoreInfoUrl are printed', () => {
  const d = {
    ...hit,
    description: null,
    categories: [],
    creationDate: null,
    isBundle: false,
    isLeaf: true,
    rebootBehavior: null,
    impact: null,
    browseOnly: false,
    maxDownloadSize: null,
    supportUrl: null,
    moreInfoUrl: 'https://a',
    moreInfoUrls: ['https://a', 'https://b'],
    cveIds: ['CVE-2026-21001', 'CVE-2026-21002'],
    securityBulletinId: null,
    prerequisites: [],
    bundleMembers: [],
    bundledBy: [],
    supersedes: [],
    supersededBy: [],
    files: [],
    titles: [],
  } satisfies CatalogUpdateDetails;
  const text = renderDetails(d);
  assert.match(text, /CVEs +CVE-2026-21001, CVE-2026-21002/);
  assert.match(text, /More information:\n {2}https:\/\/a\n {2}https:\/\/b/);
});
