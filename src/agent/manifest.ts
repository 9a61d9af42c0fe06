/**
 * The client folder's manifest (`patchline client pack`, DESIGN.md §5): sha256 and size of every
 * file the agent needs (node.exe, the bundle, wua.ps1, the trust roots). The agent checks it before
 * it runs anything, so a corrupted, half-copied or tampered file on a share or a target is refused
 * with a stable code instead of running. Transports compare two manifests to copy only the files
 * whose digests differ.
 *
 * What it does not do: it is not a signature. Whoever can rewrite the whole folder (manifest
 * included) can make it pass; protect the share with permissions (README "Real servers").
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchlineError } from '../domain/errors.ts';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'patchline-client/1';

export interface ManifestEntry {
  readonly sha256: string;
  readonly size: number;
}

export interface ClientManifest {
  readonly format: typeof MANIFEST_FORMAT;
  /** Patchline's version; the folder is named after it. */
  readonly version: string;
  /** File name (flat: no directories) → digest. */
  readonly files: Readonly<Record<string, ManifestEntry>>;
}

/** A file name a manifest may list: flat, no path separators, no `..`. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** sha256 and size of one file, streamed (node.exe is ~80 MB). */
export async function digestFile(path: string): Promise<ManifestEntry> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The manifest of `names` inside `dir`. */
export async function buildManifest(dir: string, version: string, names: readonly string[]): Promise<ClientManifest> {
  const files: Record<string, ManifestEntry> = {};
  for (const name of [...names].sort()) {
    if (!SAFE_NAME.test(name) || name === MANIFEST_FILE) throw new Error(`not a client file name: ${name}`);
    files[name] = await digestFile(join(dir, name));
  }
  return { format: MANIFEST_FORMAT, version, files };
}

/** Reads a manifest's text; a malformed one is CLIENT_MANIFEST_INVALID. */
export function parseManifest(text: string, where: string): ClientManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PatchlineError(
      'CLIENT_MANIFEST_INVALID',
      `${where} is not JSON: lay the client out again with patchline client pack`,
      { cause: error, context: { file: where } },
    );
  }
  const v = value as Partial<ClientManifest> | null;
  const ok =
    typeof v === 'object' &&
    v !== null &&
    v.format === MANIFEST_FORMAT &&
    typeof v.version === 'string' &&
    typeof v.files === 'object' &&
    v.files !== null &&
    Object.entries(v.files).every(
      ([name, e]) =>
        SAFE_NAME.test(name) &&
        typeof e === 'object' &&
        e !== null &&
        /^[0-9a-f]{64}$/.test(String(e.sha256)) &&
        Number.isSafeInteger(e.size),
    );
  if (!ok)
    throw new PatchlineError(
      'CLIENT_MANIFEST_INVALID',
      `${where} is not a ${MANIFEST_FORMAT} manifest: lay the client out again with patchline client pack`,
      { context: { file: where } },
    );
  return v as ClientManifest;
}

/**
 * Checks every file of the client folder against its manifest. Throws CLIENT_INCOMPLETE (a listed
 * file is missing) or CLIENT_TAMPERED (a digest differs, naming the file and both digests).
 *
 * @example await verifyClientDir('\\\\files01\\patchline\\0.1.0', ['patchline.mjs', 'wua.ps1'])
 */
export async function verifyClientDir(dir: string, required: readonly string[] = []): Promise<ClientManifest> {
  const manifestPath = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (error) {
    throw new PatchlineError(
      'CLIENT_INCOMPLETE',
      `the client folder ${dir} has no readable ${MANIFEST_FILE}: lay it out with patchline client pack`,
      { cause: error, context: { file: manifestPath } },
    );
  }
  const manifest = parseManifest(text, manifestPath);
  for (const name of required) {
    if (manifest.files[name] === undefined)
      throw new PatchlineError(
        'CLIENT_MANIFEST_INVALID',
        `${manifestPath} does not list ${name}: lay the client out again with patchline client pack`,
        { context: { file: manifestPath } },
      );
  }
  for (const [name, expected] of Object.entries(manifest.files)) {
    let actual: ManifestEntry;
    try {
      actual = await digestFile(join(dir, name));
    } catch (error) {
      throw new PatchlineError(
        'CLIENT_INCOMPLETE',
        `the client file ${join(dir, name)} is missing or unreadable: lay the client out again`,
        { cause: error, context: { file: join(dir, name) } },
      );
    }
    if (actual.sha256 !== expected.sha256 || actual.size !== expected.size) {
      throw new PatchlineError(
        'CLIENT_TAMPERED',
        `the client file ${join(dir, name)} does not match its manifest (sha256 ${actual.sha256}, expected ${expected.sha256}): it was modified or half-copied; the agent refuses to run. Lay the client out again with patchline client pack`,
        { context: { file: join(dir, name) } },
      );
    }
  }
  return manifest;
}

/**
 * The files a transport must copy so that `target` matches `source`: every file whose digest or
 * size differs or that the target lacks, then manifest.json last (so an interrupted copy fails the
 * agent's check instead of passing it). Empty when the target is already current.
 *
 * @example filesToCopy(shareManifest, null) // every file, then 'manifest.json'
 */
export function filesToCopy(source: ClientManifest, target: ClientManifest | null): readonly string[] {
  const changed = Object.entries(source.files)
    .filter(([name, entry]) => {
      const there = target?.files[name];
      return there === undefined || there.sha256 !== entry.sha256 || there.size !== entry.size;
    })
    .map(([name]) => name);
  const sameSet =
    target !== null &&
    Object.keys(target.files).length === Object.keys(source.files).length &&
    target.version === source.version;
  if (changed.length === 0 && sameSet) return [];
  return [...changed, MANIFEST_FILE];
}

/**
 * When this code runs from a packed client bundle (the pack defines PATCHLINE_CLIENT_PACK at
 * bundle time), the folder it runs from, checked against its manifest; null from sources or the
 * lab's bundle, which have no manifest.
 */
export async function checkPackedClient(bundleDir: string, packed: boolean): Promise<ClientManifest | null> {
  if (!packed) return null;
  return verifyClientDir(bundleDir, ['patchline.mjs', 'wua.ps1']);
}
