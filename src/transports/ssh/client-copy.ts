/**
 * prepare for the SSH transport: put the client (node.exe, the agent bundle, wua.ps1, trust roots
 * and manifest.json, as `patchline client pack` lays them out) in `C:\ProgramData\Patchline\
 * <version>` on the target — exactly the files its manifest lists, and only those whose sha256
 * differs from the target's own (Get-FileHash on the target), manifest last, each under a
 * temporary name then renamed. Anything else in the local folder stays where it is.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { PatchlineError } from '../../domain/errors.ts';
import { makeDirs, writeAtomic } from './sftp-files.ts';
import { sftpPath } from './scripts.ts';

/** Written last, so a target never holds a manifest naming files not yet copied. */
const MANIFEST_FILE = 'manifest.json';
/** `patchline client pack`'s manifest format (src/agent/manifest.ts, which this tier may not import). */
const MANIFEST_FORMAT = 'patchline-client/1';
/** A file name a manifest may list: flat, no path separators, no `..`. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export interface LocalFile {
  readonly name: string;
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

async function digest(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The named files of a local folder, with their digests. */
export async function localFiles(dir: string, names: readonly string[]): Promise<readonly LocalFile[]> {
  const files: LocalFile[] = [];
  for (const name of names) files.push({ name, path: join(dir, name), ...(await digest(join(dir, name))) });
  return files;
}

/**
 * The client to copy: the files `dir/manifest.json` lists, then the manifest itself. Each listed
 * file is checked against the manifest first, so a half-written or altered local client is refused
 * here (CLIENT_TAMPERED, CLIENT_INCOMPLETE) rather than copied to every target and refused there.
 *
 * @example const { version, files } = await manifestClientFiles('/srv/patchline/0.1.0')
 */
export async function manifestClientFiles(
  dir: string,
): Promise<{ readonly version: string; readonly files: readonly LocalFile[] }> {
  const manifestPath = join(dir, MANIFEST_FILE);
  let value: { format?: unknown; version?: unknown; files?: unknown };
  try {
    value = JSON.parse(await readFile(manifestPath, 'utf8')) as typeof value;
  } catch (error) {
    throw new PatchlineError(
      'CLIENT_INCOMPLETE',
      `the client folder ${dir} has no readable ${MANIFEST_FILE} (${(error as Error).message}): lay it out with patchline client pack`,
      { cause: error, context: { file: manifestPath } },
    );
  }
  const entries =
    typeof value.files === 'object' && value.files !== null
      ? Object.entries(value.files as Record<string, { sha256?: unknown; size?: unknown }>)
      : null;
  if (
    value.format !== MANIFEST_FORMAT ||
    typeof value.version !== 'string' ||
    entries === null ||
    entries.length === 0 ||
    !entries.every(
      ([name, e]) =>
        SAFE_NAME.test(name) &&
        name !== MANIFEST_FILE &&
        typeof e?.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(e.sha256) &&
        Number.isSafeInteger(e.size),
    )
  ) {
    throw new PatchlineError(
      'CLIENT_MANIFEST_INVALID',
      `${manifestPath} is not a ${MANIFEST_FORMAT} manifest: lay the client out again with patchline client pack`,
      { context: { file: manifestPath } },
    );
  }
  const files: LocalFile[] = [];
  for (const [name, expected] of entries.sort(([a], [b]) => a.localeCompare(b))) {
    const path = join(dir, name);
    const actual = await digest(path).catch((error: unknown) => {
      throw new PatchlineError(
        'CLIENT_INCOMPLETE',
        `the client file ${path} that ${MANIFEST_FILE} lists is missing or unreadable: lay the client out again`,
        { cause: error, context: { file: path } },
      );
    });
    if (actual.sha256 !== expected.sha256 || actual.size !== expected.size) {
      throw new PatchlineError(
        'CLIENT_TAMPERED',
        `the client file ${path} does not match its manifest (sha256 ${actual.sha256}, expected ${String(expected.sha256)}): it would be refused on every target. Lay the client out again with patchline client pack`,
        { context: { file: path } },
      );
    }
    files.push({ name, path, ...actual });
  }
  files.push({ name: MANIFEST_FILE, path: manifestPath, ...(await digest(manifestPath)) });
  return { version: value.version, files };
}

/** The files to copy: missing on the target, or with another digest there; the manifest goes last. */
export function filesToCopy(
  local: readonly LocalFile[],
  remote: Readonly<Record<string, string>>,
): readonly LocalFile[] {
  const differ = local.filter((f) => remote[f.name]?.toLowerCase() !== f.sha256);
  return [...differ.filter((f) => f.name !== MANIFEST_FILE), ...differ.filter((f) => f.name === MANIFEST_FILE)];
}

export interface CopyResult {
  readonly copied: readonly string[];
  readonly bytes: number;
  readonly total: number;
}

/** Copies `files` into the Windows folder `targetDir` over SFTP. */
export async function copyFiles(
  sftp: SFTPWrapper,
  targetDir: string,
  files: readonly LocalFile[],
  total: number,
): Promise<CopyResult> {
  const dir = sftpPath(targetDir);
  await makeDirs(sftp, dir);
  let bytes = 0;
  for (const file of files) {
    await writeAtomic(sftp, `${dir}/${file.name}`, await readFile(file.path));
    bytes += file.size;
  }
  return { copied: files.map((f) => f.name), bytes, total };
}
