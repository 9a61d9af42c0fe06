/**
 * Offline scans in the lab: what WUA does after `AddScanPackageService(…, wsusscn2.cab)` and a
 * search with ServerSelection ssOthers, simulated for a virtual host.
 *
 * `loadOfflineCatalog(cabPath)` checks the cab's Authenticode signature first (WUA refuses a scan
 * package that is not signed by a root it trusts: Microsoft's, or in the lab the lab root written
 * beside the cab as FILE.root.pem), then streams index.xml, package.xml and the c/x/l shard blobs
 * through the project's catalog parsers and keeps only what applicability and the update records
 * need. `offlineApplicable(catalog, host)` is then a pure function of the cab's content and the
 * host's installed set: product categories, prerequisites (with "one of" groups), supersedence
 * (SupersededBy RevisionIds resolved to UpdateIds), category/detectoid entries left out, and a
 * bundle reported instead of its members. `searchOfflineCab` wraps both into the provider
 * protocol's search result. Failures carry the HRESULT WUA would report (OFFLINE_SCAN_HRESULT).
 *
 * Parsed catalogs are cached within a process per file (path, or the same inode reached through a
 * hard link) + mtime + size + trusted roots: every virtual host of an in-process lab scans the same
 * cab (linked into each host's directory), and parsing it once per host would turn a 500-host lab
 * night into 500 parses.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { verifyCabSignature } from '../catalog/authenticode/verify.ts';
import { parseIndexXml, shardFor } from '../catalog/index-xml.ts';
import { readPackageXml } from '../catalog/package-xml.ts';
import { defaultRoots } from '../catalog/roots/default-roots.ts';
import {
  decodeBlob,
  parseBlobName,
  parseCoreBlob,
  parseExtendedBlob,
  parseLocalizedBlob,
  type ExtendedBlob,
} from '../catalog/shards.ts';
import { cabSource } from '../catalog/source-cab.ts';
import type { CatalogSource } from '../catalog/source.ts';
import { PatchlineError } from '../domain/errors.ts';
import {
  CATEGORY_TYPES,
  SEVERITIES,
  type Category,
  type CategoryType,
  type Impact,
  type RebootBehavior,
  type Severity,
  type UpdateRecord,
} from '../domain/update.ts';
import type { ProviderEvent, ProviderResult, RequestOf, ResultData } from '../wua/protocol.ts';
import type { HostState } from './host-state.ts';
import type { Scenario, ScenarioHost } from './scenario.ts';
import { matchesCriteria, parseCriteria } from './search-criteria.ts';

/** The HRESULTs an offline scan fails with (names from shared/testdata/wua/error-codes.json). */
export const OFFLINE_SCAN_HRESULT = {
  /** ERROR_FILE_NOT_FOUND: the cab is not at the path given (or cannot be opened). */
  FILE_NOT_FOUND: '0x80070002',
  /** WU_E_OL_INVALID_SCANFILE: unsigned, tampered, untrusted, or its content is not a catalog. */
  INVALID_SCANFILE: '0x80247001',
  /** WU_E_INVALID_FILE: the file is not a cabinet at all. */
  INVALID_FILE: '0x80240031',
  /** E_INVALIDARG: an offline search without a cab path. */
  INVALIDARG: '0x80070057',
  /** WU_E_INVALID_CRITERIA. */
  INVALID_CRITERIA: '0x80240032',
} as const;

/** Two catalogs per process: the current one and the one a fresh sync just brought. */
export const OFFLINE_CATALOG_CACHE_ENTRIES = 2;
/** The lab catalog generator writes its root certificate here (catalog-gen.ts). */
export const LAB_ROOT_SUFFIX = '.root.pem';

/** A failed offline scan: the PatchlineError code says why, `hresult` is what WUA would answer. */
export class OfflineScanError extends PatchlineError {
  constructor(
    code: string,
    readonly hresult: string,
    message: string,
    details: { cause?: unknown; context?: Record<string, string | number> } = {},
  ) {
    super(code, message, details);
  }
}

/** A category (Company, ProductFamily, Product, UpdateClassification) found in the cab. */
export interface OfflineCategory {
  readonly id: string;
  /** Its title in the l/ blob; the id when the cab has none. */
  readonly name: string;
  /** The type other updates file it under; null when nothing refers to it. */
  readonly type: CategoryType | null;
  /** Categories this one requires (its parents, e.g. a product's family). */
  readonly parents: readonly string[];
}

/** The host-independent part of an update record. */
export type OfflineRecordBase = Omit<UpdateRecord, 'isDownloaded' | 'isHidden' | 'eulaAccepted'>;

/** An update a scan may report: not a category or detectoid, not a member of a bundle. */
export interface OfflineUpdate {
  readonly updateId: string;
  readonly revisionId: number;
  /** Ids of its Product categories. */
  readonly productIds: readonly string[];
  /** Prerequisites that must each be satisfied. */
  readonly prerequisites: readonly string[];
  /** "Or" groups: one member of each must be satisfied. */
  readonly oneOf: readonly (readonly string[])[];
  readonly record: OfflineRecordBase;
}

export interface OfflineCatalog {
  /** The path the catalog was read from (first reader's, when hard links share one parse). */
  readonly cabPath: string;
  /** Subject of the signer whose signature was checked; null for an unverified source (tests). */
  readonly signerSubject: string | null;
  readonly packageId: string | null;
  readonly creationDate: string | null;
  /** Reportable updates, in package.xml order. */
  readonly updates: readonly OfflineUpdate[];
  readonly categories: ReadonlyMap<string, OfflineCategory>;
  /** UpdateId → the UpdateIds it supersedes (from every SupersededBy in the cab). */
  readonly supersedes: ReadonlyMap<string, readonly string[]>;
  /** What was left out of `updates`, for diagnostics and tests. */
  readonly skipped: { readonly categories: number; readonly detectoids: number; readonly bundleMembers: number };
  /** Things that did not stop the scan (a SupersededBy naming an unknown revision …). */
  readonly warnings: readonly string[];
}

/** What the scan knows about the machine: its product and WUA's installed set. */
export interface OfflineHost {
  /** The product's category name as the cab titles it, e.g. "Windows Server 2022". */
  readonly product: string;
  /** Installed UpdateIds (including installs still waiting for their reboot). */
  readonly installedUpdateIds: Iterable<string>;
  /** Installed UpdateIds whose reboot is done: only these satisfy a prerequisite. */
  readonly rebootDoneIds: Iterable<string>;
  readonly downloadedIds?: Iterable<string>;
  readonly hiddenIds?: Iterable<string>;
}

// ── building the catalog from a source ─────────────────────────────────────────────────────

interface RawUpdate {
  readonly updateId: string;
  readonly revisionId: number;
  readonly revisionNumber: number;
  readonly creationDate: string | null;
  readonly language: string;
  readonly evaluateOnly: boolean;
  readonly categories: readonly { readonly id: string; readonly type: string }[];
  readonly prerequisites: readonly string[];
  readonly oneOf: readonly (readonly string[])[];
  readonly supersededBy: readonly number[];
  readonly bundledBy: readonly number[];
  readonly payloadFiles: readonly string[];
}

interface BlobDetails {
  updateType?: string | null;
  supersededUpdateIds?: readonly string[];
  extended?: ExtendedBlob;
  title?: string | null;
  localizedSupportUrl?: string | null;
}

const REBOOT: Readonly<Record<string, RebootBehavior>> = {
  NeverReboots: 'never',
  AlwaysRequiresReboot: 'always',
  CanRequestReboot: 'canRequest',
};
const IMPACT: Readonly<Record<string, Impact>> = {
  Normal: 'normal',
  Minor: 'minor',
  RequiresExclusiveHandling: 'exclusive',
};
/** How many examples a warning about many entries names. */
const WARNING_EXAMPLES = 5;
/** When a bundle's members disagree, the most demanding reboot behaviour wins (as WUA reports bundles). */
const REBOOT_RANK: Readonly<Record<RebootBehavior, number>> = { never: 0, canRequest: 1, always: 2 };

const isCategoryType = (t: string): t is CategoryType => (CATEGORY_TYPES as readonly string[]).includes(t);
const isSeverity = (s: string | null | undefined): s is Severity =>
  s !== null && s !== undefined && (SEVERITIES as readonly string[]).includes(s);
const isoDate = (text: string | null | undefined): string => {
  const ms = text ? Date.parse(text) : NaN;
  return Number.isFinite(ms) ? new Date(ms).toISOString() : new Date(0).toISOString();
};

/**
 * A copy of `text` that owns its characters. Parsers hand out substrings, and V8 keeps a
 * substring's whole parent (a blob, a 64 KB chunk of package.xml) alive as long as it lives;
 * the catalog outlives the parse, so what it keeps is copied.
 */
const flat = (text: string): string => Buffer.from(text, 'utf16le').toString('utf16le');
const flatOrNull = (text: string | null): string | null => (text === null ? null : flat(text));

/** Splits package.xml prerequisites into the required ones and the "Or" groups. */
function splitPrerequisites(prereqs: readonly { readonly updateId: string; readonly orGroup: number | null }[]): {
  all: string[];
  oneOf: string[][];
} {
  const all: string[] = [];
  const groups = new Map<number, string[]>();
  for (const p of prereqs) {
    if (p.orGroup === null) all.push(p.updateId);
    else groups.set(p.orGroup, [...(groups.get(p.orGroup) ?? []), p.updateId]);
  }
  return { all, oneOf: [...groups.values()] };
}

/**
 * Streams a catalog source into an OfflineCatalog: package.xml once, then only the shards that
 * hold revisions of package.xml's updates, keeping the details of the latest revision of each.
 * Does not check signatures (loadOfflineCatalog does, before calling this).
 */
export async function buildOfflineCatalog(
  source: CatalogSource,
  meta: { readonly cabPath: string; readonly signerSubject: string | null },
  signal?: AbortSignal,
): Promise<OfflineCatalog> {
  const warnings: string[] = [];
  const index = parseIndexXml(await source.indexXml(signal));

  // 1. package.xml: the graph, by RevisionId. Only the latest revision of an UpdateId counts.
  const byRevision = new Map<number, RawUpdate>();
  const latest = new Map<string, RawUpdate>();
  const categoryTypes = new Map<string, string>();
  const fileUrls = new Map<string, string>();
  let packageId: string | null = null;
  let creationDate: string | null = null;
  for await (const batch of readPackageXml(source.packageXml(signal))) {
    if (batch.header) ({ packageId, creationDate } = batch.header);
    for (const u of batch.updates) {
      const { all, oneOf } = splitPrerequisites(u.prerequisites);
      const raw: RawUpdate = {
        updateId: u.updateId,
        revisionId: u.revisionId,
        revisionNumber: u.revisionNumber,
        creationDate: u.creationDate,
        language: (u.defaultLanguage ?? 'en').toLowerCase(),
        evaluateOnly: u.deploymentAction === 'Evaluate',
        categories: u.categories,
        prerequisites: all,
        oneOf,
        supersededBy: u.supersededBy,
        bundledBy: u.bundledBy,
        payloadFiles: u.payloadFiles,
      };
      byRevision.set(raw.revisionId, raw);
      const previous = latest.get(raw.updateId);
      if (!previous || previous.revisionNumber < raw.revisionNumber) latest.set(raw.updateId, raw);
      for (const c of u.categories) if (c.type) categoryTypes.set(c.id, c.type);
    }
    for (const f of batch.fileLocations) fileUrls.set(f.id, f.url);
  }

  // 2. The shard blobs of those revisions (c: type and supersedence, x: KB …, l: title).
  const wanted = new Map<number, RawUpdate>([...latest.values()].map((u) => [u.revisionId, u]));
  const details = new Map<number, BlobDetails>();
  const shardsNeeded = new Set<string>();
  for (const rev of wanted.keys()) {
    const shard = shardFor(index, rev);
    if (shard) shardsNeeded.add(shard);
  }
  // A bundle member is never reported: only its x/ blob (size, reboot behaviour) is read.
  const isMember = (u: RawUpdate): boolean => u.bundledBy.some((rev) => byRevision.has(rev));
  for (const shard of index.shards) {
    if (!shardsNeeded.has(shard.name)) continue;
    for await (const blob of source.shardBlobs(shard.name, signal)) {
      const name = parseBlobName(blob.name);
      const u = name ? wanted.get(name.revisionId) : undefined;
      if (!name || !u || (name.kind !== 'x' && isMember(u))) continue;
      const d = details.get(name.revisionId) ?? {};
      details.set(name.revisionId, d);
      const text = decodeBlob(blob.bytes);
      if (name.kind === 'c') {
        const core = parseCoreBlob(text);
        d.updateType = core.updateType;
        d.supersededUpdateIds = core.supersededUpdateIds;
      } else if (name.kind === 'x') {
        d.extended = parseExtendedBlob(text);
      } else if (
        name.kind === 'l' &&
        (name.language === u.language || (d.title === undefined && name.language === 'en'))
      ) {
        const loc = parseLocalizedBlob(text);
        d.title = loc.title;
        d.localizedSupportUrl = loc.supportUrl;
      }
    }
  }

  // Tens of thousands of updates name the same few categories and GUIDs: keep one owned copy of
  // each (measured on a 20 000-update lab cab: 3.9 KB per kept update without this, 1.3 KB with).
  const pool = new Map<string, string>();
  const intern = (text: string): string => {
    const known = pool.get(text);
    if (known !== undefined) return known;
    const own = flat(text);
    pool.set(own, own);
    return own;
  };
  const internAll = (ids: readonly string[]): string[] => ids.map(intern);

  // 3. Sort the entries: categories, detectoids, bundle members, and the updates a scan reports.
  const updateIdOfRevision = (rev: number): string | undefined => byRevision.get(rev)?.updateId;
  const kindOf = (u: RawUpdate): 'category' | 'detectoid' | 'member' | 'update' => {
    const type = details.get(u.revisionId)?.updateType;
    if (type === 'Detectoid') return 'detectoid';
    // DeploymentAction="Evaluate" marks category and detectoid entries; detectoids were caught above.
    if (categoryTypes.has(u.updateId) || type === 'Category' || u.evaluateOnly) return 'category';
    if (isMember(u)) return 'member';
    return 'update';
  };
  const categories = new Map<string, OfflineCategory>();
  const membersOf = new Map<string, RawUpdate[]>();
  const reportable: RawUpdate[] = [];
  const skipped = { categories: 0, detectoids: 0, bundleMembers: 0 };
  for (const u of latest.values()) {
    const kind = kindOf(u);
    if (kind === 'category') {
      skipped.categories++;
      const type = categoryTypes.get(u.updateId) ?? '';
      categories.set(intern(u.updateId), {
        id: intern(u.updateId),
        name: flat(details.get(u.revisionId)?.title ?? u.updateId),
        type: isCategoryType(type) ? type : null,
        parents: internAll([...u.prerequisites, ...u.oneOf.flat()]),
      });
    } else if (kind === 'detectoid') {
      skipped.detectoids++;
    } else if (kind === 'member') {
      skipped.bundleMembers++;
      for (const rev of u.bundledBy) {
        const bundleId = updateIdOfRevision(rev);
        if (!bundleId) continue;
        const list = membersOf.get(bundleId) ?? [];
        list.push(u);
        membersOf.set(bundleId, list);
      }
    } else {
      reportable.push(u);
    }
  }

  // Supersedence: SupersededBy names RevisionIds; WUA (and the lab) reason in UpdateIds.
  const supersedes = new Map<string, string[]>();
  const unknownRevisions: string[] = [];
  for (const u of latest.values()) {
    for (const rev of u.supersededBy) {
      const newer = updateIdOfRevision(rev);
      if (!newer) {
        unknownRevisions.push(`${u.updateId} → ${rev}`);
        continue;
      }
      const list = supersedes.get(newer) ?? [];
      if (!list.includes(u.updateId)) list.push(intern(u.updateId));
      supersedes.set(intern(newer), list);
    }
  }

  if (unknownRevisions.length > 0) {
    // Expired superseding revisions are left out of real catalogs; name a few, count the rest.
    const shown = unknownRevisions.slice(0, WARNING_EXAMPLES).join(', ');
    warnings.push(
      `${unknownRevisions.length} SupersededBy reference(s) name revisions the cab does not contain (ignored): ${shown}${unknownRevisions.length > WARNING_EXAMPLES ? ', …' : ''}`,
    );
  }

  const sharedCategories = new Map<string, Category>();
  const categoryOf = (c: { id: string; type: string }): Category | null => {
    if (!isCategoryType(c.type)) return null;
    const key = `${c.type}|${c.id}`;
    let shared = sharedCategories.get(key);
    if (!shared) {
      shared = { id: intern(c.id), name: categories.get(c.id)?.name ?? c.id, type: c.type };
      sharedCategories.set(key, shared);
    }
    return shared;
  };
  const updates = reportable
    .sort((a, b) => a.revisionId - b.revisionId)
    .map((u): OfflineUpdate => {
      const d = details.get(u.revisionId) ?? {};
      const updateId = intern(u.updateId);
      const members = membersOf.get(u.updateId) ?? [];
      const memberExt = members
        .map((m) => details.get(m.revisionId)?.extended)
        .filter((x): x is ExtendedBlob => x !== undefined);
      const cats = u.categories.map(categoryOf).filter((c): c is Category => c !== null);
      const ext = d.extended;
      return {
        updateId,
        revisionId: u.revisionId,
        productIds: cats.filter((c) => c.type === 'Product').map((c) => c.id),
        prerequisites: internAll(u.prerequisites),
        oneOf: u.oneOf.map(internAll),
        record: {
          updateId,
          revisionNumber: u.revisionNumber,
          title: flat(d.title ?? u.updateId),
          kbs: ext?.kb ? [flat(ext.kb)] : [],
          msrcSeverity: isSeverity(ext?.msrcSeverity) ? ext.msrcSeverity : null,
          classification: cats.find((c) => c.type === 'UpdateClassification')?.name ?? '',
          products: cats.filter((c) => c.type === 'Product').map((c) => c.name),
          categories: cats,
          isMandatory: false,
          browseOnly: ext?.browseOnly ?? false,
          type: d.updateType === 'Driver' ? 'driver' : 'software',
          rebootBehavior: rebootOf(ext, memberExt),
          impact: IMPACT[ext?.impact ?? ''] ?? 'normal',
          supersededUpdateIds: internAll(
            d.supersededUpdateIds && d.supersededUpdateIds.length > 0
              ? d.supersededUpdateIds
              : (supersedes.get(u.updateId) ?? []),
          ),
          maxDownloadSize: sizeOf(ext, memberExt),
          lastDeploymentChangeTime: isoDate(u.creationDate),
          supportUrl: flatOrNull(ext?.supportUrl ?? d.localizedSupportUrl ?? null),
          downloadUrls: [...u.payloadFiles, ...members.flatMap((m) => m.payloadFiles)]
            .map((id) => fileUrls.get(id))
            .filter((url): url is string => url !== undefined)
            .map(flat),
        },
      };
    });
  return {
    cabPath: meta.cabPath,
    signerSubject: meta.signerSubject,
    packageId,
    creationDate,
    updates,
    categories,
    supersedes,
    skipped,
    warnings,
  };
}

/** A bundle's reboot behaviour: its own, else the most demanding of its members', else never. */
function rebootOf(own: ExtendedBlob | undefined, members: readonly ExtendedBlob[]): RebootBehavior {
  const mine = REBOOT[own?.rebootBehavior ?? ''];
  if (mine) return mine;
  let best: RebootBehavior = 'never';
  for (const m of members) {
    const r = REBOOT[m.rebootBehavior ?? ''];
    if (r && REBOOT_RANK[r] > REBOOT_RANK[best]) best = r;
  }
  return best;
}

/** MaxDownloadSize of the bundle, or the sum of its members' when the bundle carries none. */
function sizeOf(own: ExtendedBlob | undefined, members: readonly ExtendedBlob[]): number {
  const fileBytes = (x: ExtendedBlob): number => x.maxDownloadSize || x.files.reduce((n, f) => n + (f.size ?? 0), 0);
  const mine = own ? fileBytes(own) : 0;
  return mine > 0 ? mine : members.reduce((n, m) => n + fileBytes(m), 0);
}

// ── applicability: a pure function of the catalog and the host ───────────────────────────────

/** Why a reportable update is not applicable to a host, or null when it is. */
export type OfflineNotApplicableReason = 'product' | 'installed' | 'prerequisite' | 'superseded';

interface HostFacts {
  readonly productIds: ReadonlySet<string>;
  /** Categories the host "has": its product and the categories that product requires. */
  readonly presentCategories: ReadonlySet<string>;
  readonly installed: ReadonlySet<string>;
  readonly rebootDone: ReadonlySet<string>;
  readonly superseded: ReadonlySet<string>;
}

const lowerSet = (ids: Iterable<string> | undefined): Set<string> =>
  new Set([...(ids ?? [])].map((id) => id.toLowerCase()));

/** The facts the rules need, computed once per scan. Pure. */
function hostFacts(catalog: OfflineCatalog, host: OfflineHost): HostFacts {
  const wanted = host.product.trim().toLowerCase();
  const productIds = new Set(
    [...catalog.categories.values()]
      .filter((c) => c.type === 'Product' && c.name.toLowerCase() === wanted)
      .map((c) => c.id),
  );
  const present = new Set<string>();
  const pending = [...productIds];
  while (pending.length > 0) {
    const id = pending.pop() as string;
    if (present.has(id)) continue;
    present.add(id);
    pending.push(...(catalog.categories.get(id)?.parents ?? []));
  }
  const installed = lowerSet(host.installedUpdateIds);
  // Supersedence is transitive: an installed update hides what it supersedes, and what that superseded.
  const superseded = new Set<string>();
  const walk = [...installed];
  while (walk.length > 0) {
    const id = walk.pop() as string;
    for (const old of catalog.supersedes.get(id) ?? []) {
      if (!superseded.has(old)) {
        superseded.add(old);
        walk.push(old);
      }
    }
  }
  return { productIds, presentCategories: present, installed, rebootDone: lowerSet(host.rebootDoneIds), superseded };
}

function notApplicable(u: OfflineUpdate, facts: HostFacts): OfflineNotApplicableReason | null {
  if (!u.productIds.some((id) => facts.productIds.has(id))) return 'product';
  if (facts.installed.has(u.updateId)) return 'installed';
  const satisfied = (id: string): boolean => facts.presentCategories.has(id) || facts.rebootDone.has(id);
  if (!u.prerequisites.every(satisfied) || !u.oneOf.every((group) => group.some(satisfied))) return 'prerequisite';
  if (facts.superseded.has(u.updateId)) return 'superseded';
  return null;
}

/** The host's view of a record: downloaded and hidden flags from its state. */
function hostView(host: OfflineHost): (u: OfflineUpdate) => UpdateRecord {
  const downloaded = lowerSet(host.downloadedIds);
  const hidden = lowerSet(host.hiddenIds);
  return (u) => ({
    ...u.record,
    isDownloaded: downloaded.has(u.updateId),
    isHidden: hidden.has(u.updateId),
    // package.xml's EulaFiles are not parsed (and the lab's cab writes none), so a scan cannot
    // tell that a licence is pending; the provider's install accepts licences anyway.
    eulaAccepted: true,
  });
}

/**
 * Why `updateId` is not applicable to `host`, from the cab alone; null when it is applicable,
 * undefined when the cab does not report such an update (a category, detectoid, bundle member,
 * or an unknown id).
 */
export function offlineNotApplicableReason(
  catalog: OfflineCatalog,
  host: OfflineHost,
  updateId: string,
): OfflineNotApplicableReason | null | undefined {
  const u = catalog.updates.find((x) => x.updateId === updateId.toLowerCase());
  return u ? notApplicable(u, hostFacts(catalog, host)) : undefined;
}

/**
 * The updates the host needs, computed from the cab's content and the installed set alone,
 * in package.xml order (what `IsInstalled=0` finds in an offline scan).
 *
 * @example
 *   offlineApplicable(catalog, { product: 'Windows Server 2022', installedUpdateIds: [], rebootDoneIds: [] }).map((u) => u.kbs[0])
 */
export function offlineApplicable(catalog: OfflineCatalog, host: OfflineHost): UpdateRecord[] {
  const facts = hostFacts(catalog, host);
  return catalog.updates.filter((u) => notApplicable(u, facts) === null).map(hostView(host));
}

/** The installed updates of the host's product that the cab knows (what `IsInstalled=1` finds). */
export function offlineInstalled(catalog: OfflineCatalog, host: OfflineHost): UpdateRecord[] {
  const facts = hostFacts(catalog, host);
  return catalog.updates
    .filter((u) => facts.installed.has(u.updateId) && u.productIds.some((id) => facts.productIds.has(id)))
    .map(hostView(host));
}

// ── loading a cab: signature, cache ────────────────────────────────────────────────────────

/** Parsed catalogs shared by the scans of one process, keyed by what identifies the cab's content. */
export interface OfflineCatalogCache {
  /** The cached catalog for `key`, or the result of `build` (shared by concurrent callers; failures are not kept). */
  get(key: string, build: () => Promise<OfflineCatalog>): Promise<OfflineCatalog>;
  readonly size: number;
}

/** A small LRU of parsed catalogs. */
export function createOfflineCatalogCache(maxEntries: number = OFFLINE_CATALOG_CACHE_ENTRIES): OfflineCatalogCache {
  const entries = new Map<string, Promise<OfflineCatalog>>();
  return {
    get(key, build) {
      const hit = entries.get(key);
      if (hit) {
        entries.delete(key);
        entries.set(key, hit);
        return hit;
      }
      const pending = build();
      entries.set(key, pending);
      pending.catch(() => {
        if (entries.get(key) === pending) entries.delete(key);
      });
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      return pending;
    },
    get size() {
      return entries.size;
    },
  };
}

/**
 * The one process-wide cache. A deliberate exception to "no singletons": its key is the cab's
 * identity (file, mtime, size, trusted roots), so it only memoises a pure function of file
 * content, and provider sessions created anywhere in the process share one parse.
 */
const processCache = createOfflineCatalogCache();

export interface LoadOfflineCatalogOptions {
  /** PEM texts of extra trusted roots, besides Microsoft's (and the lab root beside the cab). */
  readonly roots?: readonly string[];
  /** Trust FILE.root.pem beside the cab, as the lab's hosts do (default true). */
  readonly trustRootBesideCab?: boolean;
  readonly cache?: OfflineCatalogCache;
  /** Where inner cabs are unpacked while reading (default: the OS temp dir). */
  readonly tempDir?: string;
  /** Stops waiting; a parse other scans share goes on. */
  readonly signal?: AbortSignal;
}

async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** WUA's HRESULT for a failure to verify or read a scan package. */
function scanError(error: unknown, cabPath: string): OfflineScanError {
  if (error instanceof OfflineScanError) return error;
  if (error instanceof PatchlineError) {
    const hresult =
      error.code === 'CATALOG_NOT_CABINET'
        ? OFFLINE_SCAN_HRESULT.INVALID_FILE
        : error.code === 'CATALOG_UNREADABLE'
          ? OFFLINE_SCAN_HRESULT.FILE_NOT_FOUND
          : OFFLINE_SCAN_HRESULT.INVALID_SCANFILE;
    return new OfflineScanError(error.code, hresult, error.message, {
      cause: error,
      context: { file: cabPath, hresult },
    });
  }
  const reason = (error as Error).message;
  return new OfflineScanError(
    'OFFLINE_CAB_INVALID',
    OFFLINE_SCAN_HRESULT.INVALID_SCANFILE,
    `${cabPath} is signed but is not a readable wsusscn2 catalog (${reason}). Generate or download the catalog again.`,
    { cause: error, context: { file: cabPath, hresult: OFFLINE_SCAN_HRESULT.INVALID_SCANFILE } },
  );
}

async function waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolvePromise, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Verifies and parses a wsusscn2-shaped cab for offline scans, as AddScanPackageService does;
 * cached per file (path or inode) + mtime + size + trusted roots.
 *
 * @example
 *   const catalog = await loadOfflineCatalog('C:/lab/hosts/web01/wsusscn2.cab');
 * @throws OfflineScanError with hresult 0x80070002 (no such file), 0x80240031 (not a cabinet),
 *   0x80247001 (unsigned, tampered, untrusted, or not a catalog); its code is the CATALOG_* code
 *   of the signature check, OFFLINE_CAB_NOT_FOUND or OFFLINE_CAB_INVALID.
 */
export async function loadOfflineCatalog(
  cabPath: string,
  options: LoadOfflineCatalogOptions = {},
): Promise<OfflineCatalog> {
  const file = resolve(cabPath);
  let info;
  try {
    info = await stat(file);
  } catch (cause) {
    throw new OfflineScanError(
      'OFFLINE_CAB_NOT_FOUND',
      OFFLINE_SCAN_HRESULT.FILE_NOT_FOUND,
      `the offline scan package ${file} cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}). Copy wsusscn2.cab to the host's local disk and give its path.`,
      { cause, context: { file, hresult: OFFLINE_SCAN_HRESULT.FILE_NOT_FOUND } },
    );
  }
  const besideRoot = options.trustRootBesideCab === false ? null : await readIfPresent(`${file}${LAB_ROOT_SUFFIX}`);
  const roots = [...defaultRoots(), ...(besideRoot ? [besideRoot] : []), ...(options.roots ?? [])];
  const rootsDigest = createHash('sha256').update(roots.join('\0')).digest('hex').slice(0, 16);
  // The inode, not the path: hosts whose directories hold hard links to one cab share one parse.
  // A file replaced by a new download gets a new inode (or at least a new mtime).
  const identity = info.ino > 0 ? `${info.dev}:${info.ino}` : file;
  const key = `${identity}\0${info.mtimeMs}\0${info.size}\0${rootsDigest}`;
  const cache = options.cache ?? processCache;
  const built = cache.get(key, async () => {
    try {
      const verified = await verifyCabSignature(file, { roots });
      const source = await cabSource(file, options.tempDir === undefined ? {} : { tempDir: options.tempDir });
      try {
        return await buildOfflineCatalog(source, { cabPath: file, signerSubject: verified.signer.subject });
      } finally {
        await source.close();
      }
    } catch (error) {
      throw scanError(error, file);
    }
  });
  return waitFor(built, options.signal);
}

// ── the provider's offline search ───────────────────────────────────────────────────────────

/** How a lab host's state on disk looks to an offline scan: scenario keys become UpdateIds. */
export function offlineHostOf(
  scenario: Scenario,
  host: ScenarioHost,
  state: Pick<HostState, 'installed' | 'downloaded' | 'hidden'>,
): OfflineHost {
  const idOf = (key: string): string => scenario.byKey.get(key)?.updateId ?? key;
  const entries = Object.entries(state.installed);
  return {
    product: host.product,
    installedUpdateIds: entries.map(([key]) => idOf(key)),
    rebootDoneIds: entries.filter(([, u]) => u.rebootDone).map(([key]) => idOf(key)),
    downloadedIds: state.downloaded.map(idOf),
    hiddenIds: state.hidden.map(idOf),
  };
}

export interface OfflineSearchContext {
  readonly scenario: Scenario;
  readonly host: ScenarioHost;
  readonly state: HostState;
  readonly emit?: (event: ProviderEvent) => void;
  readonly load?: LoadOfflineCatalogOptions;
}

function failed(req: RequestOf<'search'>, hresult: string, message: string): ProviderResult {
  return { type: 'result', requestId: req.id, request: 'search', resultCode: 'failed', hresult, message };
}

/**
 * The simulated provider's `search` with serverSelection "offline": the same criteria as an
 * online search, answered from the cab at `req.offlineCabPath`.
 *
 * @example const result = await searchOfflineCab(req, { scenario, host, state: await load(), emit });
 */
export async function searchOfflineCab(req: RequestOf<'search'>, ctx: OfflineSearchContext): Promise<ProviderResult> {
  if (!req.offlineCabPath)
    return failed(
      req,
      OFFLINE_SCAN_HRESULT.INVALIDARG,
      'an offline search needs offlineCabPath: the local path of wsusscn2.cab on the host',
    );
  const parsed = parseCriteria(req.criteria);
  if (!parsed.ok)
    return failed(
      req,
      OFFLINE_SCAN_HRESULT.INVALID_CRITERIA,
      `invalid search criteria "${req.criteria}": ${parsed.message}`,
    );
  let catalog: OfflineCatalog;
  try {
    catalog = await loadOfflineCatalog(req.offlineCabPath, ctx.load);
  } catch (error) {
    if (!(error instanceof OfflineScanError)) throw error;
    return failed(req, error.hresult, error.message);
  }
  const host = offlineHostOf(ctx.scenario, ctx.host, ctx.state);
  const candidates = [
    ...offlineApplicable(catalog, host).map((record) => ({ record, isInstalled: false })),
    ...offlineInstalled(catalog, host).map((record) => ({ record, isInstalled: true })),
  ];
  const updates = candidates
    .filter(({ record, isInstalled }) =>
      matchesCriteria(parsed.criteria, {
        isInstalled,
        isHidden: record.isHidden,
        type: record.type,
        browseOnly: record.browseOnly,
        updateId: record.updateId,
      }),
    )
    .map(({ record }) => record);
  ctx.emit?.({ type: 'progress', requestId: req.id, phase: 'search', updateId: null, percent: 100 });
  // UpdateRecord's arrays are readonly; the protocol's Static type spells them mutable.
  return {
    type: 'result',
    requestId: req.id,
    request: 'search',
    resultCode: 'succeeded',
    hresult: null,
    data: { updates: updates as unknown as ResultData<'search'>['updates'] },
  };
}
