/**
 * Update filters: which of the updates a scan found may be acted on.
 *
 * The connector's options (--classification, --kb, --exclude-kb, --title, --min-age …) become one
 * UpdateFilters value; `selectUpdates` applies it to a scan and says, for every update left out,
 * why — so the log and the report can tell an administrator what was skipped and which option
 * did it. Pure: the current time is a parameter.
 */
import type { UpdateRecord } from './update.ts';

export interface UpdateFilters {
  /** Classification names, case-insensitive ("Security Updates"). Empty or absent: any. */
  readonly classifications?: readonly string[];
  /** MSRC severities, case-insensitive; "none" matches updates without a severity. */
  readonly severities?: readonly string[];
  /** Product names, case-insensitive; an update matches when any of its products is listed. */
  readonly products?: readonly string[];
  /** KB numbers, digits only. When given, only these. */
  readonly kbs?: readonly string[];
  readonly excludeKbs?: readonly string[];
  /** Update ids, lower case. When given, only these. */
  readonly updateIds?: readonly string[];
  readonly excludeUpdateIds?: readonly string[];
  /** A regular expression (source text) matched case-insensitively against the title. */
  readonly title?: string;
  /** Take optional (BrowseOnly) updates too. Default false. */
  readonly includeOptional?: boolean;
  /** Take driver updates too. Default false. */
  readonly includeDrivers?: boolean;
  /** Only updates released at least this many days ago (LastDeploymentChangeTime). */
  readonly minAgeDays?: number;
}

export const SKIP_REASONS = [
  'hidden',
  'optional',
  'driver',
  'classification',
  'severity',
  'product',
  'kb',
  'exclude-kb',
  'update-id',
  'exclude-update-id',
  'title',
  'min-age',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export interface Skipped {
  readonly update: UpdateRecord;
  readonly reason: SkipReason;
}

export interface Selection {
  readonly selected: readonly UpdateRecord[];
  readonly skipped: readonly Skipped[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

const lowerSet = (values: readonly string[] | undefined): Set<string> | null =>
  values && values.length > 0 ? new Set(values.map((v) => v.trim().toLowerCase())) : null;

/** Compiles filters once; returns the first reason an update is left out, or null to take it. */
export function compileFilters(filters: UpdateFilters, now: Date): (u: UpdateRecord) => SkipReason | null {
  const classifications = lowerSet(filters.classifications);
  const severities = lowerSet(filters.severities);
  const products = lowerSet(filters.products);
  const kbs = lowerSet(filters.kbs?.map(normalizeKb));
  const excludeKbs = lowerSet(filters.excludeKbs?.map(normalizeKb));
  const updateIds = lowerSet(filters.updateIds);
  const excludeUpdateIds = lowerSet(filters.excludeUpdateIds);
  const title = filters.title ? new RegExp(filters.title, 'i') : null;
  const minAgeMs = filters.minAgeDays !== undefined ? filters.minAgeDays * DAY_MS : null;

  return (u) => {
    if (u.isHidden) return 'hidden';
    const id = u.updateId.toLowerCase();
    // Explicit exclusions win over everything else.
    if (excludeUpdateIds?.has(id)) return 'exclude-update-id';
    if (excludeKbs && u.kbs.some((kb) => excludeKbs.has(kb))) return 'exclude-kb';
    // An update named explicitly by id or KB is wanted even if optional or a driver.
    const named = (updateIds?.has(id) ?? false) || (kbs !== null && u.kbs.some((kb) => kbs.has(kb)));
    if (updateIds && !updateIds.has(id)) return 'update-id';
    if (kbs && !u.kbs.some((kb) => kbs.has(kb))) return 'kb';
    if (!named && u.browseOnly && !filters.includeOptional) return 'optional';
    if (!named && u.type === 'driver' && !filters.includeDrivers) return 'driver';
    if (classifications && !classifications.has(u.classification.toLowerCase())) return 'classification';
    if (severities && !severities.has((u.msrcSeverity ?? 'none').toLowerCase())) return 'severity';
    if (products && !u.products.some((p) => products.has(p.toLowerCase()))) return 'product';
    if (title && !title.test(u.title)) return 'title';
    if (minAgeMs !== null) {
      const released = Date.parse(u.lastDeploymentChangeTime);
      if (!Number.isFinite(released) || now.getTime() - released < minAgeMs) return 'min-age';
    }
    return null;
  };
}

/**
 * Splits a scan into the updates to act on and the ones left out, with the reason for each.
 *
 * @example
 *   selectUpdates(scan, { classifications: ['Security Updates'], excludeKbs: ['5044444'] }, now)
 */
export function selectUpdates(updates: readonly UpdateRecord[], filters: UpdateFilters, now: Date): Selection {
  const reasonOf = compileFilters(filters, now);
  const selected: UpdateRecord[] = [];
  const skipped: Skipped[] = [];
  for (const update of updates) {
    const reason = reasonOf(update);
    if (reason === null) selected.push(update);
    else skipped.push({ update, reason });
  }
  return { selected, skipped };
}

/** "KB5044444", "kb 5044444" and "5044444" are the same KB: digits only. */
export function normalizeKb(kb: string): string {
  return kb.trim().replace(/^kb\s*/i, '');
}

export interface ListParseResult {
  readonly items: readonly string[];
  /** 1-based line numbers and text of lines that are not valid entries. */
  readonly invalid: readonly { readonly line: number; readonly text: string }[];
}

/**
 * Parses an OpCon-style list file: one entry per line, `#` starts a comment, blank lines ignored,
 * commas also separate entries. With `kind: 'kb'`, a "KB" prefix is optional and entries must be
 * digits; with `kind: 'guid'`, entries must be GUIDs (returned in lower case).
 *
 * @example parseList("KB5044444\n# pilot only\n5043050", 'kb') // { items: ['5044444', '5043050'], invalid: [] }
 */
export function parseList(text: string, kind: 'kb' | 'guid'): ListParseResult {
  const items: string[] = [];
  const invalid: { line: number; text: string }[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const content = raw.replace(/#.*$/, '');
    for (const part of content.split(',')) {
      const entry = part.trim();
      if (entry === '') continue;
      if (kind === 'kb') {
        const kb = normalizeKb(entry);
        if (/^\d{4,8}$/.test(kb)) items.push(kb);
        else invalid.push({ line: index + 1, text: entry });
      } else if (GUID_RE.test(entry)) {
        items.push(entry.replace(/[{}]/g, '').toLowerCase());
      } else {
        invalid.push({ line: index + 1, text: entry });
      }
    }
  });
  return { items: [...new Set(items)], invalid };
}

const GUID_RE = /^\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$/i;

/** A filter value that matched no update found on any host: a likely typo, reported loudly. */
export interface UnmatchedFilter {
  /** The option, as on the command line: `--product`. */
  readonly option: string;
  /** The values given that matched nothing. */
  readonly values: readonly string[];
  /** What the scans did find for that attribute (sorted, at most UNMATCHED_SEEN_MAX), so the typo is plain. */
  readonly seen: readonly string[];
}

const UNMATCHED_SEEN_MAX = 20;

/**
 * The include-filter values (products, classifications, severities, KBs, update ids) that matched
 * no update any host's scan found. Where names can be checked up front (the lab scenario, an
 * imported catalog) they are; this catches the rest after the fact.
 *
 * @example unmatchedFilterValues({ products: ['Windows Server 2002'] }, scanned)
 *   // [{ option: '--product', values: ['Windows Server 2002'], seen: ['Windows Server 2022'] }]
 */
export function unmatchedFilterValues(filters: UpdateFilters, found: Iterable<UpdateRecord>): UnmatchedFilter[] {
  const attributes: {
    option: string;
    given: readonly string[] | undefined;
    of: (u: UpdateRecord) => readonly string[];
    key: (v: string) => string;
  }[] = [
    { option: '--product', given: filters.products, of: (u) => u.products, key: (v) => v.trim().toLowerCase() },
    {
      option: '--classification',
      given: filters.classifications,
      of: (u) => [u.classification],
      key: (v) => v.trim().toLowerCase(),
    },
    {
      option: '--severity',
      given: filters.severities,
      of: (u) => [u.msrcSeverity ?? 'none'],
      key: (v) => v.trim().toLowerCase(),
    },
    {
      option: '--kb',
      given: filters.kbs,
      of: (u) => u.kbs.map((kb) => `KB${kb}`),
      key: (v) => normalizeKb(v).toLowerCase(),
    },
    { option: '--update-id', given: filters.updateIds, of: (u) => [u.updateId], key: (v) => v.trim().toLowerCase() },
  ];
  const seen = attributes.map(() => new Map<string, string>());
  for (const u of found) {
    attributes.forEach((a, i) => {
      if (a.given && a.given.length > 0) for (const v of a.of(u)) seen[i]!.set(a.key(v), v);
    });
  }
  const result: UnmatchedFilter[] = [];
  attributes.forEach((a, i) => {
    if (!a.given || a.given.length === 0) return;
    const values = a.given.filter((v) => !seen[i]!.has(a.key(v)));
    if (values.length > 0)
      result.push({ option: a.option, values, seen: [...seen[i]!.values()].sort().slice(0, UNMATCHED_SEEN_MAX) });
  });
  return result;
}
