/**
 * Getting members out of an opened cabinet: as a stream, into a writable, into a directory, or
 * all of them. Output paths are the sanitised ones cabextract would write, and every write is
 * checked to stay inside the destination directory.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CabError, corrupt } from './errors.ts';
import type { CabFile, Cabinet } from './cabinet.ts';
import { FolderSession, memberProblem } from './folder-stream.ts';

export interface ExtractProgress {
  /** Members finished (extracted or failed) so far, and the total. */
  readonly filesDone: number;
  readonly filesTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly current: CabFile;
}

export interface ExtractAllOptions {
  readonly onProgress?: (progress: ExtractProgress) => void;
  /** Extract every member that can be, and report the others, instead of stopping at the first failure. */
  readonly continueOnError?: boolean;
  readonly signal?: AbortSignal;
}

export interface ExtractReport {
  readonly extracted: readonly { readonly file: CabFile; readonly path: string }[];
  readonly failed: readonly { readonly file: CabFile; readonly error: CabError }[];
}

/** Find a member by stored name, output path (either separator) or object; first match wins. */
export function findMember(cab: Cabinet, member: string | CabFile): CabFile {
  if (typeof member !== 'string') return member;
  const wanted = member.replace(/\\/g, '/');
  const found = cab.files.find((f) => f.name === member || f.path === wanted || f.name.replace(/\\/g, '/') === wanted);
  if (!found)
    throw new CabError('CAB_NOT_FOUND', `No member named ${member} in ${cab.path}`, { member, file: cab.path });
  return found;
}

/** The decompressed bytes of one member, chunk by chunk; decompresses only that member's folder. */
export async function* memberChunks(
  cab: Cabinet,
  member: string | CabFile,
  session?: FolderSession,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const file = findMember(cab, member);
  const folder = cab.folders[file.folderIndex]!;
  const problem = memberProblem(file, folder);
  if (problem) throw problem;
  let produced = 0;
  const s = session ?? new FolderSession(folder);
  for await (const chunk of s.read(file.offsetInFolder, file.size, signal)) {
    produced += chunk.length;
    yield chunk;
  }
  if (produced !== file.size) throw corrupt(`member ${file.name} ended after ${produced} of ${file.size} bytes`);
}

/**
 * A Readable of one member's bytes. Throws at once (CAB_NOT_FOUND, CAB_INCOMPLETE, CAB_CORRUPT)
 * when the member is unknown or cannot be extracted; data errors arrive as stream errors.
 * @example await pipeline(openFileStream(cab, 'index.xml'), createWriteStream('index.xml'));
 */
export function openFileStream(cab: Cabinet, member: string | CabFile, signal?: AbortSignal): Readable {
  // Fail now, not on first read, when the member does not exist or cannot be extracted.
  const file = findMember(cab, member);
  const problem = memberProblem(file, cab.folders[file.folderIndex]!);
  if (problem) throw problem;
  return Readable.from(memberChunks(cab, file, undefined, signal), { objectMode: false });
}

/**
 * Extract one member into a directory (at its sanitised path; returns that path) or a Writable.
 */
export async function extractFile(
  cab: Cabinet,
  member: string | CabFile,
  destination: string | Writable,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const file = findMember(cab, member);
  if (typeof destination !== 'string') {
    await pipeline(Readable.from(memberChunks(cab, file, undefined, signal)), destination, signal ? { signal } : {});
    return undefined;
  }
  return writeMember(cab, file, destination, undefined, signal);
}

export interface MemberVisitOptions {
  readonly continueOnError?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Visit every member in cabinet order with a stream of its bytes, reusing folder state between
 * consecutive members of one folder (each folder is decompressed once, as cabextract does).
 * `visit` must consume the chunks before returning. With `continueOnError`, members that fail
 * with a CabError are collected and the walk goes on; otherwise the first failure is thrown.
 * @example await forEachMember(cab, async (f, chunks) => { for await (const c of chunks) hash.update(c); });
 */
export async function forEachMember<T>(
  cab: Cabinet,
  visit: (file: CabFile, chunks: AsyncIterable<Buffer>) => Promise<T>,
  options: MemberVisitOptions = {},
): Promise<{
  readonly done: readonly { file: CabFile; result: T }[];
  readonly failed: readonly { file: CabFile; error: CabError }[];
}> {
  const done: { file: CabFile; result: T }[] = [];
  const failed: { file: CabFile; error: CabError }[] = [];
  let session: FolderSession | undefined;
  for (const file of cab.files) {
    options.signal?.throwIfAborted();
    const folder = cab.folders[file.folderIndex]!;
    // libmspack's rule: keep the decompressor when staying in a folder and not going backwards.
    if (!session || session.folder !== folder || session.offset > file.offsetInFolder)
      session = new FolderSession(folder);
    try {
      done.push({ file, result: await visit(file, memberChunks(cab, file, session, options.signal)) });
    } catch (error) {
      if (!(error instanceof CabError) || !options.continueOnError) throw error;
      failed.push({ file, error });
    }
  }
  return { done, failed };
}

/** Extract every member into `dir` (see forEachMember for the order and error rules). */
export async function extractAll(cab: Cabinet, dir: string, options: ExtractAllOptions = {}): Promise<ExtractReport> {
  const bytesTotal = cab.files.reduce((n, f) => n + f.size, 0);
  let bytesDone = 0;
  let filesDone = 0;
  const progress = (file: CabFile): void => {
    bytesDone += file.size;
    options.onProgress?.({
      filesDone: ++filesDone,
      filesTotal: cab.files.length,
      bytesDone,
      bytesTotal,
      current: file,
    });
  };
  const { done, failed } = await forEachMember(
    cab,
    async (file, chunks) => {
      try {
        return await writeChunks(file, chunks, dir, options.signal);
      } finally {
        progress(file);
      }
    },
    options,
  );
  return { extracted: done.map(({ file, result }) => ({ file, path: result })), failed };
}

/** The absolute output path of `file` under `dir`, or a CabError when the name would escape it. */
export function safeOutputPath(dir: string, file: CabFile): Buffer {
  const root = resolve(dir);
  const target = Buffer.concat([Buffer.from(root + sep), file.pathBytes]);
  // cabextract's sanitising turns "../" into "xx/" but leaves a final ".." (or a trailing "/")
  // alone; writing there would fail or land outside, so refuse such names.
  const components = file.path.split('/');
  const last = components[components.length - 1];
  if (
    file.pathBytes.length === 0 ||
    file.pathBytes.includes(0) ||
    components.includes('..') ||
    last === '' ||
    last === '.'
  ) {
    throw corrupt(`member name ${JSON.stringify(file.name)} is not a safe relative path`, { member: file.name });
  }
  return target;
}

async function writeMember(
  cab: Cabinet,
  file: CabFile,
  dir: string,
  session: FolderSession | undefined,
  signal?: AbortSignal,
): Promise<string> {
  return writeChunks(file, memberChunks(cab, file, session, signal), dir, signal);
}

async function writeChunks(
  file: CabFile,
  chunks: AsyncIterable<Buffer>,
  dir: string,
  signal?: AbortSignal,
): Promise<string> {
  const target = safeOutputPath(dir, file);
  const slash = file.pathBytes.lastIndexOf(0x2f);
  const root = resolve(dir);
  await mkdir(slash < 0 ? root : Buffer.concat([Buffer.from(root + sep), file.pathBytes.subarray(0, slash)]), {
    recursive: true,
  });
  try {
    await pipeline(Readable.from(chunks), createWriteStream(target), signal ? { signal } : {});
  } catch (error) {
    // Do not leave a partial member behind.
    await rm(target, { force: true });
    throw error;
  }
  return target.toString('utf8');
}
