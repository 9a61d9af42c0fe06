/**
 * prepare for the SSH transport: put the client (node.exe, the agent bundle, wua.ps1, trust roots
 * and manifest.json, as `patchline client pack` lays them out) in `C:\ProgramData\Patchline\
 * <version>` on the target — only the files whose sha256 differs from the target's own
 * (Get-FileHash on the target), manifest last, each under a temporary name then renamed.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { makeDirs, writeAtomic } from './sftp-files.ts';
import { sftpPath } from './scripts.ts';

/** Written last, so a target never holds a manifest naming files not yet copied. */
const MANIFEST_FILE = 'manifest.json';

export interface LocalFile {
  readonly name: string;
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

/** The files directly in a local client folder, with their digests. */
export async function localClientFiles(dir: string): Promise<readonly LocalFile[]> {
  const files: LocalFile[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const info = await stat(path);
    if (!info.isFile()) continue;
    files.push({ name, path, size: info.size, sha256: createHash('sha256').update(await readFile(path)).digest('hex') });
  }
  return files;
}

/** The files to copy: missing on the target, or with another digest there; the manifest goes last. */
export function filesToCopy(local: readonly LocalFile[], remote: Readonly<Record<string, string>>): readonly LocalFile[] {
  const differ = local.filter((f) => remote[f.name]?.toLowerCase() !== f.sha256);
  return [...differ.filter((f) => f.name !== MANIFEST_FILE), ...differ.filter((f) => f.name === MANIFEST_FILE)];
}

export interface CopyResult {
  readonly copied: readonly string[];
  readonly bytes: number;
  readonly total: number;
}

/** Copies `files` into the Windows folder `targetDir` over SFTP. */
export async function copyFiles(sftp: SFTPWrapper, targetDir: string, files: readonly LocalFile[], total: number): Promise<CopyResult> {
  const dir = sftpPath(targetDir);
  await makeDirs(sftp, dir);
  let bytes = 0;
  for (const file of files) {
    await writeAtomic(sftp, `${dir}/${file.name}`, await readFile(file.path));
    bytes += file.size;
  }
  return { copied: files.map((f) => f.name), bytes, total };
}
