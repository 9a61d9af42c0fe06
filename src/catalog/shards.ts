/**
 * The per-revision blobs inside package2…N.cab: `c/<rev>` (core), `x/<rev>` (extended),
 * `l/<lang>/<rev>` (localized). Pure functions from blob text to records.
 *
 * The blobs are fragments (several root elements, no namespace), so they go through
 * parseFragment's synthetic root. Field locations follow SCHEMA-NOTES.md §4 and the real
 * fixture: KBArticleID is a child element of ExtendedProperties, MsrcSeverity an attribute.
 *
 * Checked against public parsers of the real file (issue 7):
 * - x/ blobs carry no CreationDate: Microsoft strips it, and vuls-data-update's ExtendedProperties
 *   struct (MaineK00n/vuls-data-update pkg/fetch/microsoft/wsusscn2/types.go, type X) has none;
 *   the release date is package.xml's Update/@CreationDate. It also reads CveID as a repeated
 *   child of ExtendedProperties, beside KBArticleID and SecurityBulletinID.
 * - BundledUpdates lists members directly and inside AtLeastOne groups: Microsoft's own
 *   update-server-server-sync (src/library/Metadata/BundledUpdatesParser.cs) queries both
 *   `BundledUpdates/UpdateIdentity` and `BundledUpdates/AtLeastOne/UpdateIdentity`.
 * - l/ blobs may carry several MoreInfoUrl elements (WSUS keeps them in a table of their own,
 *   tbMoreInfoURLForRevision); every one is kept.
 * - EULA blobs are named e/<lang>/<rev>, like the l/ blobs.
 */
import { childText, childrenNamed, findFirst, parseFragment, type XmlElement } from './xml-tree.ts';

export const BLOB_KINDS = ['c', 'x', 'l', 'e'] as const;
export type BlobKind = (typeof BLOB_KINDS)[number];

export interface BlobName {
  readonly kind: BlobKind;
  /** For `l/` and `e/` blobs: the language directory ("en", "de"). */
  readonly language: string | null;
  readonly revisionId: number;
}

/**
 * Parses a shard member name: "c/123", "x\\123", "l/en/123", "e/en/123" (cabinets store `\`).
 * Returns null for members that are not revision blobs.
 *
 * @example parseBlobName('l\\en\\345678') // { kind: 'l', language: 'en', revisionId: 345678 }
 */
export function parseBlobName(name: string): BlobName | null {
  const parts = name.split(/[\\/]/).filter((p) => p !== '');
  const kind = parts[0];
  const last = parts[parts.length - 1] ?? '';
  if (!/^\d+$/.test(last)) return null;
  const revisionId = Number(last);
  if ((kind === 'l' || kind === 'e') && parts.length === 3)
    return { kind, language: (parts[1] ?? '').toLowerCase(), revisionId };
  if ((kind === 'c' || kind === 'x') && parts.length === 2) return { kind, language: null, revisionId };
  return null;
}

export interface CoreBlob {
  readonly updateId: string | null;
  readonly revisionNumber: number | null;
  /** Software, Driver, Category, Detectoid … */
  readonly updateType: string | null;
  readonly explicitlyDeployable: boolean | null;
  readonly prerequisites: readonly { readonly updateId: string; readonly orGroup: number | null }[];
  readonly bundledUpdateIds: readonly string[];
  readonly supersededUpdateIds: readonly string[];
}

export interface ExtendedFile {
  /** base64 digest (SHA-1 in every catalog seen). */
  readonly digest: string;
  readonly digestAlgorithm: string | null;
  readonly fileName: string | null;
  readonly size: number | null;
  readonly modified: string | null;
  /** base64 SHA-256 from AdditionalDigest, when present. */
  readonly sha256: string | null;
}

export interface ExtendedBlob {
  readonly kb: string | null;
  readonly msrcSeverity: string | null;
  readonly securityBulletinId: string | null;
  readonly supportUrl: string | null;
  readonly rebootBehavior: string | null;
  readonly impact: string | null;
  readonly maxDownloadSize: number | null;
  readonly isBeta: boolean | null;
  readonly browseOnly: boolean;
  /** CveID elements ("CVE-2026-21001"), in document order, without duplicates. */
  readonly cveIds: readonly string[];
  readonly files: readonly ExtendedFile[];
}

export interface LocalizedBlob {
  readonly language: string | null;
  readonly title: string | null;
  readonly description: string | null;
  /** The first MoreInfoUrl (kept for callers that show one link). */
  readonly moreInfoUrl: string | null;
  /** Every MoreInfoUrl, in document order. */
  readonly moreInfoUrls: readonly string[];
  readonly supportUrl: string | null;
}

const optNumber = (value: string | undefined): number | null => {
  if (value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
};
const optBool = (value: string | undefined): boolean | null =>
  value === undefined ? null : value === 'true' || value === '1';
const lowerGuid = (value: string | undefined): string | null => (value ? value.toLowerCase() : null);

/** Maps a c/ blob: identity, UpdateType, and relationships (prerequisites with AtLeastOne groups). */
export function parseCoreBlob(text: string): CoreBlob {
  const root = parseFragment(text);
  const identity = root.children.find((c) => c.name === 'UpdateIdentity');
  const properties = root.children.find((c) => c.name === 'Properties');
  const relationships = root.children.find((c) => c.name === 'Relationships');
  const prerequisites: { updateId: string; orGroup: number | null }[] = [];
  const prereqEl = childrenNamed(relationships, 'Prerequisites')[0];
  let group = 0;
  for (const child of prereqEl?.children ?? []) {
    if (child.name === 'UpdateIdentity') {
      const id = lowerGuid(child.attrs.UpdateID);
      if (id) prerequisites.push({ updateId: id, orGroup: null });
    } else if (child.name === 'AtLeastOne') {
      group += 1;
      for (const member of childrenNamed(child, 'UpdateIdentity')) {
        const id = lowerGuid(member.attrs.UpdateID);
        if (id) prerequisites.push({ updateId: id, orGroup: group });
      }
    }
  }
  const ids = (el: XmlElement | undefined): string[] =>
    childrenNamed(el, 'UpdateIdentity')
      .map((u) => lowerGuid(u.attrs.UpdateID))
      .filter((id): id is string => id !== null);
  // Members listed directly and members inside AtLeastOne groups are all members of the bundle.
  const bundled = (el: XmlElement | undefined): string[] => [
    ...new Set([...ids(el), ...childrenNamed(el, 'AtLeastOne').flatMap(ids)]),
  ];
  return {
    updateId: lowerGuid(identity?.attrs.UpdateID),
    revisionNumber: optNumber(identity?.attrs.RevisionNumber),
    updateType: properties?.attrs.UpdateType ?? null,
    explicitlyDeployable: optBool(properties?.attrs.ExplicitlyDeployable),
    prerequisites,
    bundledUpdateIds: bundled(childrenNamed(relationships, 'BundledUpdates')[0]),
    supersededUpdateIds: ids(childrenNamed(relationships, 'SupersededUpdates')[0]),
  };
}

const UPDATE_TYPE_RE = /<Properties\b[^>]*?\sUpdateType\s*=\s*(?:"([^"]*)"|'([^']*)')/;

/**
 * Just the UpdateType of a c/ blob, which is all the importer needs from it. Real core blobs carry
 * long applicability rules and supersedence lists; scanning for the Properties tag instead of
 * building their tree saves a third of the shard phase. Falls back to the full parse when the
 * quick look finds nothing (odd quoting, a prefix), so the answer is the same either way.
 *
 * @example coreUpdateType('<UpdateIdentity UpdateID="x"/><Properties UpdateType="Category"/>') // 'Category'
 */
export function coreUpdateType(text: string): string | null {
  const m = UPDATE_TYPE_RE.exec(text);
  if (m) return m[1] ?? m[2] ?? null;
  return parseCoreBlob(text).updateType;
}

/** Maps an x/ blob: KB, MSRC severity, reboot behaviour, sizes, and payload file details. */
export function parseExtendedBlob(text: string): ExtendedBlob {
  const root = parseFragment(text);
  const ext = root.children.find((c) => c.name === 'ExtendedProperties');
  const behavior = ext ? childrenNamed(ext, 'InstallationBehavior')[0] : undefined;
  const kb = childText(ext, 'KBArticleID');
  const filesEl = root.children.find((c) => c.name === 'Files') ?? (ext ? findFirst(ext, 'Files') : undefined);
  const files = childrenNamed(filesEl, 'File')
    .map((f): ExtendedFile => {
      const sha256 = childrenNamed(f, 'AdditionalDigest').find(
        (d) => (d.attrs.Algorithm ?? '').toUpperCase() === 'SHA256',
      );
      return {
        digest: f.attrs.Digest ?? '',
        digestAlgorithm: f.attrs.DigestAlgorithm ?? null,
        fileName: f.attrs.FileName ?? null,
        size: optNumber(f.attrs.Size),
        modified: f.attrs.Modified ?? null,
        sha256: sha256?.text.trim() || null,
      };
    })
    .filter((f) => f.digest !== '');
  return {
    kb: kb ? kb.replace(/^KB/i, '') : null,
    msrcSeverity: ext?.attrs.MsrcSeverity || null,
    securityBulletinId: childText(ext, 'SecurityBulletinID'),
    supportUrl: childText(ext, 'SupportUrl'),
    rebootBehavior: behavior?.attrs.RebootBehavior ?? null,
    impact: behavior?.attrs.Impact ?? null,
    maxDownloadSize: optNumber(ext?.attrs.MaxDownloadSize),
    isBeta: optBool(ext?.attrs.IsBeta),
    browseOnly: ext?.attrs.BrowseOnly === 'true',
    cveIds: [
      ...new Set(
        childrenNamed(ext, 'CveID')
          .map((c) => c.text.trim())
          .filter((c) => c !== ''),
      ),
    ],
    files,
  };
}

/** Maps an l/<lang>/ blob: title, description, links. */
export function parseLocalizedBlob(text: string): LocalizedBlob {
  const root = parseFragment(text);
  const loc = root.children.find((c) => c.name === 'LocalizedProperties') ?? root;
  const moreInfoUrls = childrenNamed(loc, 'MoreInfoUrl')
    .map((m) => m.text.trim())
    .filter((u) => u !== '');
  return {
    language: childText(loc, 'Language'),
    title: childText(loc, 'Title'),
    description: childText(loc, 'Description'),
    moreInfoUrl: moreInfoUrls[0] ?? null,
    moreInfoUrls,
    supportUrl: childText(loc, 'SupportUrl'),
  };
}

/** Blob bytes → text: UTF-8 unless a UTF-16 byte-order mark says otherwise. */
export function decodeBlob(bytes: Buffer): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}
