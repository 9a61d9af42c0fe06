/**
 * What the lab's catalog generator writes, as pure data: one GenUpdate per RevisionId — the
 * category updates (company, product family, products, classifications), the scenario's updates,
 * then N filler updates computed on demand from their index (so 350 000 of them never sit in
 * memory at once).
 *
 * Shape, as Microsoft's catalog: every installable update is a bundle (IsBundle) carrying the KB,
 * severity and categories; scenario updates are their own leaf with the payload file; filler
 * bundles carry one leaf child (BundledBy) that holds the payload. Prerequisites name UpdateIds
 * (the scenario's `requires`, plus an Or group of the product categories, as real updates do);
 * SupersededBy names RevisionIds.
 */
import { createHash } from 'node:crypto';
import type { CatalogEntry, Scenario } from './scenario.ts';
import { categoriesOf } from './update-record.ts';
import { nameUuid } from './name-uuid.ts';

/** First RevisionId handed out (real ones are in the tens of millions; any positive integer works). */
export const FIRST_REVISION_ID = 1_000_000;
/** Microsoft's file host; the lab passes its upstream URL instead. */
export const DEFAULT_UPSTREAM_URL = 'http://download.windowsupdate.com';
/** Filler products: names no scenario uses, so searches for a scenario's products stay exact. */
export const FILLER_PRODUCT_COUNT = 24;
/** One filler bundle in FILLER_SUPERSEDE_EVERY is superseded by the bundle FILLER_SUPERSEDE_STRIDE later. */
const FILLER_SUPERSEDE_EVERY = 8;
const FILLER_SUPERSEDE_STRIDE = 48;
const FILLER_KB_BASE = 9_000_000;
const FILLER_TITLES = [
  'Cumulative Update',
  'Security Update',
  'Servicing Stack Update',
  'Update for .NET Framework',
  'Security Monthly Quality Rollup',
  'Dynamic Update',
];
const FILLER_SEVERITIES = ['Critical', 'Important', 'Moderate', 'Low', null] as const;
const FILLER_CLASSIFICATIONS = ['Security Updates', 'Updates', 'Critical Updates', 'Update Rollups'];

export interface GenFile {
  /** base64 SHA-1: FileLocation/@Id and File/@Digest. */
  readonly id: string;
  readonly url: string;
  readonly fileName: string;
  readonly size: number;
  /** base64 SHA-256, or null. */
  readonly sha256: string | null;
}

export interface GenUpdate {
  readonly revisionId: number;
  readonly updateId: string;
  readonly revisionNumber: number;
  readonly creationDate: string;
  /** Category for category updates; Software/Driver otherwise. */
  readonly updateType: 'Category' | 'Software' | 'Driver';
  readonly isBundle: boolean;
  readonly isLeaf: boolean;
  readonly title: string;
  readonly description: string | null;
  readonly kb: string | null;
  readonly severity: string | null;
  /** x/ RebootBehavior vocabulary. */
  readonly rebootBehavior: 'NeverReboots' | 'AlwaysRequiresReboot' | 'CanRequestReboot' | null;
  readonly impact: 'Normal' | 'Minor' | 'RequiresExclusiveHandling' | null;
  readonly browseOnly: boolean;
  readonly categories: readonly { readonly type: string; readonly id: string }[];
  readonly prerequisites: readonly string[];
  /** One "Or" group per inner list. */
  readonly orPrerequisites: readonly (readonly string[])[];
  readonly supersededBy: readonly number[];
  /** UpdateIds this one supersedes (for the c/ blob). */
  readonly supersedes: readonly string[];
  readonly bundledBy: readonly number[];
  /** UpdateIds of the bundle's members (for the c/ blob). */
  readonly bundles: readonly string[];
  readonly files: readonly GenFile[];
  readonly supportUrl: string | null;
}

export interface PayloadDigests {
  /** Lower-case hex. */
  readonly sha1: string;
  readonly sha256: string;
  readonly size: number;
  /** Absolute URL. */
  readonly url: string;
}

export interface CatalogPlan {
  readonly total: number;
  readonly firstRevisionId: number;
  /** The generated update at position i (0 ≤ i < total), in RevisionId order. */
  at(i: number): GenUpdate;
  readonly creationDate: string;
}

const REBOOT = { never: 'NeverReboots', always: 'AlwaysRequiresReboot', canRequest: 'CanRequestReboot' } as const;
const IMPACT = { normal: 'Normal', minor: 'Minor', exclusive: 'RequiresExclusiveHandling' } as const;

const hexToBase64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

/**
 * Plans a catalog for a scenario plus `extraUpdates` fillers.
 *
 * @param payloadOf digests and URL of a scenario update's payload (the lab's payload store)
 */
export function planCatalog(
  scenario: Scenario,
  extraUpdates: number,
  payloadOf: (entry: CatalogEntry) => PayloadDigests,
  upstreamUrl: string = DEFAULT_UPSTREAM_URL,
): CatalogPlan {
  // Category updates: every category any update (scenario or filler) uses.
  const categories = new Map<string, { id: string; name: string; type: string }>();
  const fillerProducts = Array.from(
    { length: FILLER_PRODUCT_COUNT },
    (_, i) => `Lab Filler Product ${String(i + 1).padStart(2, '0')}`,
  );
  const fillerCategorySets =
    extraUpdates > 0
      ? fillerProducts.flatMap((p) =>
          FILLER_CLASSIFICATIONS.map((c) => categoriesOf({ classification: c, products: [p] })),
        )
      : [];
  for (const entry of scenario.catalog) for (const c of categoriesOf(entry)) categories.set(c.id, c);
  for (const set of fillerCategorySets) for (const c of set) categories.set(c.id, c);
  const categoryList = [...categories.values()].sort(
    (a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name),
  );

  const latest = scenario.catalog.reduce((max, e) => (e.released > max ? e.released : max), '2026-01-01T00:00:00.000Z');
  const creationDate = latest;
  const first = FIRST_REVISION_ID;
  const catCount = categoryList.length;
  const scenarioCount = scenario.catalog.length;
  const revOfKey = new Map(scenario.catalog.map((e, i) => [e.key, first + catCount + i]));
  const supersededByKey = new Map<string, number[]>();
  for (const e of scenario.catalog) {
    for (const old of e.supersedes)
      supersededByKey.set(old, [...(supersededByKey.get(old) ?? []), revOfKey.get(e.key)!]);
  }

  const categoryAt = (i: number): GenUpdate => {
    const c = categoryList[i]!;
    return {
      revisionId: first + i,
      updateId: c.id,
      revisionNumber: 1,
      creationDate: '2003-01-01T00:00:00Z',
      updateType: 'Category',
      isBundle: false,
      isLeaf: false,
      title: c.name,
      description: `${c.type} category: ${c.name}`,
      kb: null,
      severity: null,
      rebootBehavior: null,
      impact: null,
      browseOnly: false,
      categories: [],
      prerequisites: [],
      orPrerequisites: [],
      supersededBy: [],
      supersedes: [],
      bundledBy: [],
      bundles: [],
      files: [],
      supportUrl: null,
    };
  };

  const scenarioAt = (i: number): GenUpdate => {
    const e = scenario.catalog[i]!;
    const cats = categoriesOf(e);
    const p = payloadOf(e);
    const fileName = decodeURIComponent(p.url.slice(p.url.lastIndexOf('/') + 1));
    return {
      revisionId: first + catCount + i,
      updateId: e.updateId,
      revisionNumber: e.revisionNumber,
      creationDate: e.released,
      updateType: e.type === 'driver' ? 'Driver' : 'Software',
      isBundle: true,
      isLeaf: true,
      title: e.title,
      description: `${e.title}. Generated by the Patchline lab from ${scenario.source}.`,
      kb: e.kb,
      severity: e.severity,
      rebootBehavior: REBOOT[e.reboot],
      impact: IMPACT[e.impact],
      browseOnly: e.optional,
      categories: cats.map((c) => ({ type: c.type, id: c.id })),
      prerequisites: e.requires.map((k) => scenario.byKey.get(k)!.updateId),
      orPrerequisites: [cats.filter((c) => c.type === 'Product').map((c) => c.id)],
      supersededBy: supersededByKey.get(e.key) ?? [],
      supersedes: e.supersedes.map((k) => scenario.byKey.get(k)!.updateId),
      bundledBy: [],
      bundles: [],
      files: [{ id: hexToBase64(p.sha1), url: p.url, fileName, size: p.size, sha256: hexToBase64(p.sha256) }],
      supportUrl: e.kb ? `https://support.microsoft.com/help/${e.kb}` : null,
    };
  };

  const fillerBase = first + catCount + scenarioCount;
  const bundles = Math.ceil(extraUpdates / 2);
  const fillerAt = (j: number): GenUpdate => {
    const b = Math.floor(j / 2);
    const isMember = j % 2 === 1;
    const bundleRev = fillerBase + 2 * b;
    const cats = fillerCategorySets[b % fillerCategorySets.length]!;
    const product = cats.find((c) => c.type === 'Product')!;
    const classification = cats.find((c) => c.type === 'UpdateClassification')!;
    const kb = String(FILLER_KB_BASE + b);
    const month = new Date(Date.UTC(2016, b % 120, 10));
    const ym = `${month.getUTCFullYear()}-${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
    const title = `${ym} ${FILLER_TITLES[b % FILLER_TITLES.length]} for ${product.name} Filler (KB${kb})`;
    const updateId = nameUuid(`filler:${b}:${isMember ? 'leaf' : 'bundle'}`);
    const memberId = nameUuid(`filler:${b}:leaf`);
    const hasMember = 2 * b + 1 < extraUpdates;
    if (isMember) {
      const sha1 = createHash('sha1').update(`filler-payload:${b}`).digest('hex');
      const size = 100_000 + ((b * 7919) % 5_000_000);
      const fileName = `windows10.0-kb${kb}-x64_${sha1}.msu`;
      return {
        revisionId: fillerBase + j,
        updateId,
        revisionNumber: 200,
        creationDate: month.toISOString(),
        updateType: 'Software',
        isBundle: false,
        isLeaf: true,
        title,
        description: null,
        kb,
        severity: null,
        rebootBehavior: 'CanRequestReboot',
        impact: 'Normal',
        browseOnly: false,
        categories: [],
        prerequisites: [],
        orPrerequisites: [],
        supersededBy: [],
        supersedes: [],
        bundledBy: [bundleRev],
        bundles: [],
        files: [
          {
            id: hexToBase64(sha1),
            url: `${upstreamUrl}/d/msdownload/update/software/updt/${month.getUTCFullYear()}/${String(month.getUTCMonth() + 1).padStart(2, '0')}/${fileName}`,
            fileName,
            size,
            sha256: null,
          },
        ],
        supportUrl: null,
      };
    }
    const superseded = b % FILLER_SUPERSEDE_EVERY === 0 && b + FILLER_SUPERSEDE_STRIDE < bundles;
    const supersedesOld = b >= FILLER_SUPERSEDE_STRIDE && (b - FILLER_SUPERSEDE_STRIDE) % FILLER_SUPERSEDE_EVERY === 0;
    return {
      revisionId: bundleRev,
      updateId,
      revisionNumber: 200,
      creationDate: month.toISOString(),
      updateType: 'Software',
      isBundle: true,
      isLeaf: !hasMember,
      title,
      description: `Install this update to resolve issues in ${product.name}. Filler generated for size.`,
      kb,
      severity: classification.name === 'Security Updates' ? (FILLER_SEVERITIES[b % 4] ?? null) : null,
      rebootBehavior: 'CanRequestReboot',
      impact: 'Normal',
      browseOnly: false,
      categories: cats.map((c) => ({ type: c.type, id: c.id })),
      prerequisites: [],
      orPrerequisites: [[product.id]],
      supersededBy: superseded ? [fillerBase + 2 * (b + FILLER_SUPERSEDE_STRIDE)] : [],
      supersedes: supersedesOld ? [nameUuid(`filler:${b - FILLER_SUPERSEDE_STRIDE}:bundle`)] : [],
      bundledBy: [],
      bundles: hasMember ? [memberId] : [],
      files: [],
      supportUrl: `https://support.microsoft.com/help/${kb}`,
    };
  };

  return {
    total: catCount + scenarioCount + extraUpdates,
    firstRevisionId: first,
    creationDate,
    at(i) {
      if (i < catCount) return categoryAt(i);
      if (i < catCount + scenarioCount) return scenarioAt(i - catCount);
      return fillerAt(i - catCount - scenarioCount);
    },
  };
}
