/**
 * Payload digests as the catalog gives them and as the cache names files. package.xml and the
 * x/ blobs carry base64 SHA-1 (`File/@Digest`, `FileLocation/@Id`) and sometimes a base64 SHA-256
 * (`AdditionalDigest Algorithm="SHA256"`); URLs and agents use hex. Everything is normalised to
 * lower-case hex here. A file is keyed by its SHA-256 when known (the stronger one), else SHA-1.
 */
import { PatchlineError } from '../domain/errors.ts';

/** One payload file of an update, as the catalog describes it. */
export interface ContentFileSpec {
  /** SHA-1, hex or base64 (the catalog's File/@Digest). */
  readonly sha1?: string | null;
  /** SHA-256, hex or base64 (AdditionalDigest), when the catalog has it. */
  readonly sha256?: string | null;
  readonly url: string;
  /** Expected size in bytes, when known (checked before hashing finishes). */
  readonly size?: number | null;
  readonly fileName?: string | null;
}

export interface NormalizedSpec {
  /** The cache key: sha256 hex if known, else sha1 hex. */
  readonly key: string;
  readonly sha1: string | null;
  readonly sha256: string | null;
  readonly url: string;
  readonly size: number | null;
  readonly fileName: string | null;
}

/**
 * Hex (lower case) from hex or base64; null when the value is neither of the expected length.
 *
 * @example toHex('2jmj7l5rSw0yVb/vlWAYkK/YBwk=', 20) // 'da39a3ee5e6b4b0d3255bfef95601890afd80709'
 */
export function toHex(value: string | null | undefined, bytes: 20 | 32): string | null {
  if (!value) return null;
  const v = value.trim();
  if (new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(v)) return v.toLowerCase();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(v)) {
    const buf = Buffer.from(v, 'base64');
    if (buf.length === bytes) return buf.toString('hex');
  }
  return null;
}

/** Validates and normalises a spec; a file without a usable digest is refused (nothing unverified is cached). */
export function normalizeSpec(spec: ContentFileSpec): NormalizedSpec {
  const sha1 = toHex(spec.sha1, 20);
  const sha256 = toHex(spec.sha256, 32);
  if (!sha1 && !sha256) {
    throw new PatchlineError(
      'CONTENT_NO_DIGEST',
      `The catalog gives no usable SHA-1 or SHA-256 for ${spec.url}; the cache never stores a file it cannot verify.`,
      { context: { url: spec.url } },
    );
  }
  return {
    key: sha256 ?? sha1!,
    sha1,
    sha256,
    url: spec.url,
    size: spec.size ?? null,
    fileName: spec.fileName ?? null,
  };
}

/** A digest as an agent or URL names it: 40 or 64 hex characters. */
export const isHexDigest = (value: string): boolean => /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(value);

/**
 * A payload file as the catalog query returns it (src/catalog/update-details.ts PayloadFile: base64
 * digests, URL from FileLocation) → a spec for the cache; null when the catalog has no URL for it.
 */
export function specFromCatalogFile(f: {
  readonly sha1: string;
  readonly sha256: string | null;
  readonly url: string | null;
  readonly size: number | null;
  readonly fileName: string | null;
}): ContentFileSpec | null {
  return f.url ? { sha1: f.sha1, sha256: f.sha256, url: f.url, size: f.size, fileName: f.fileName } : null;
}
