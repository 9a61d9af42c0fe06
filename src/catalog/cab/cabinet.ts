/**
 * Opening a cabinet file: find the cabinets in it (as cabextract does, a file may hold several,
 * or one after other data), follow spanned sets to the neighbouring files named in the headers,
 * merge folders that continue across parts, and name each member the way cabextract would write it.
 * Only headers are read here; member data is read on demand by folder-stream.ts.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CabError, corrupt } from './errors.ts';
import {
  ATTR_UTF8_NAME,
  COMPRESSION,
  COMPRESSION_MASK,
  FOLDER_INDEX_CONTINUED_FROM_PREV,
  FOLDER_INDEX_CONTINUED_PREV_AND_NEXT,
  FOLDER_INDEX_CONTINUED_TO_NEXT,
  FOLDER_MAX_BLOCKS,
  HeaderParseError,
  describeCompression,
  dosDateTime,
  parseCabinet,
  type CabinetHeader,
  type CompressionName,
  type ParsedCabinet,
} from './format.ts';
import { displayName, outputPathBytes, usesUnixSeparators } from './names.ts';
import { openRandomAccessFile, type RandomAccessFile } from './source.ts';

/** cabextract scans in 32 KiB steps; the step only matters for speed. */
const SEARCH_CHUNK_BYTES = 32768;
/** First header read; grows by doubling for cabinets with very long file tables. */
const HEADER_READ_BYTES = 4096;
/** A cabinet's header fields may claim up to this much beyond the end of the file (libmspack's slack). */
const SEARCH_LENGTH_SLACK_BYTES = 32;
/** Guard against cabinets whose next/prev names form a loop or an absurd chain. */
const MAX_SPANNED_PARTS = 4096;

/** One physical cabinet (a file, or a cabinet embedded in a file). */
export interface CabinetPart {
  readonly file: RandomAccessFile;
  readonly header: CabinetHeader;
}

/** A folder after merging the parts of a spanned set: where its CFDATA blocks are, in order. */
export interface CabFolder {
  readonly index: number;
  readonly compressionType: number;
  readonly compression: CompressionName | 'unknown';
  /** e.g. `LZX:21` */
  readonly description: string;
  readonly blockCount: number;
  /** One entry per cabinet the folder's data lies in. */
  readonly segments: readonly { readonly part: CabinetPart; readonly dataOffset: number }[];
  /** The folder starts in a cabinet that was not found: its members cannot be extracted. */
  readonly missingStart: boolean;
}

export interface CabFile {
  /** The stored name, decoded (UTF-8 when the 0x80 attribute is set). */
  readonly name: string;
  readonly rawName: Uint8Array;
  /** Relative `/`-separated output path, sanitised exactly like cabextract's. */
  readonly path: string;
  /** The same path as raw bytes (names without the UTF-8 flag keep their original bytes). */
  readonly pathBytes: Buffer;
  readonly size: number;
  readonly folderIndex: number;
  readonly offsetInFolder: number;
  readonly date: Date;
  readonly attributes: number;
  readonly utf8: boolean;
}

export interface Cabinet {
  readonly path: string;
  /** Header of the first cabinet found in the file (the one at offset 0 for ordinary files). */
  readonly header: CabinetHeader;
  readonly parts: readonly CabinetPart[];
  readonly folders: readonly CabFolder[];
  readonly files: readonly CabFile[];
  /** Non-fatal findings, worded like cabextract's warnings (extra bytes, missing set members). */
  readonly warnings: readonly string[];
  close(): Promise<void>;
}

export interface OpenCabOptions {
  /** Follow prev/next cabinet names to files beside this one (default true). */
  readonly spanning?: boolean;
}

// ---- internal mutable model used while merging, mirroring libmspack's lists ----

interface FolderNode {
  compressionType: number;
  blockCount: number;
  segments: { part: CabinetPart; dataOffset: number }[];
  mergePrev: FileNode | undefined;
  mergeNext: FileNode | undefined;
}

interface FileNode {
  readonly raw: ParsedCabinet['files'][number];
  folder: FolderNode;
}

interface CabSet {
  parts: CabinetPart[];
  folders: FolderNode[];
  files: FileNode[];
}

/**
 * Open a cabinet file and read its headers (not its data).
 * @example
 *   const cab = await openCab('wsusscn2.cab');
 *   try { console.log(cab.files.map((f) => f.name)); } finally { await cab.close(); }
 */
export async function openCab(path: string, options: OpenCabOptions = {}): Promise<Cabinet> {
  let file: RandomAccessFile;
  try {
    file = await openRandomAccessFile(path);
  } catch (error) {
    throw new CabError(
      'CAB_NOT_FOUND',
      `Cannot open cabinet ${path}: ${(error as Error).message}`,
      { file: path },
      error,
    );
  }
  const opened: RandomAccessFile[] = [file];
  try {
    const warnings: string[] = [];
    const found = await searchCabinets(file, warnings);
    if (found.length === 0) throw corrupt(`No valid cabinet found in ${path}`, { file: path });
    const sets: CabSet[] = [];
    for (const parsed of found) {
      let set = singleSet({ file, header: parsed.header }, parsed);
      if (options.spanning !== false) set = await loadSpanningParts(set, path, opened, warnings);
      sets.push(set);
    }
    return buildCabinet(path, sets, opened, warnings);
  } catch (error) {
    await Promise.allSettled(opened.map((f) => f.close()));
    throw error;
  }
}

// ---- finding cabinets in a file ----

/**
 * libmspack's cabd_find: scan for "MSCF", check that the claimed lengths roughly fit the file,
 * try to read headers there; on success continue after that cabinet, else 4 bytes on.
 * The byte-level state machine is kept as is, quirks included, so we find what cabextract finds.
 */
async function searchCabinets(file: RandomAccessFile, warnings: string[]): Promise<ParsedCabinet[]> {
  const found: ParsedCabinet[] = [];
  const fileLength = file.size;
  let firstLength: number | undefined;
  let offset = 0;
  let state = 0;
  let cabinetLength = 0;
  let filesOffset = 0;
  scan: while (offset < fileLength) {
    const buf = await file.read(offset, Math.min(SEARCH_CHUNK_BYTES, fileLength - offset));
    if (buf.length === 0) break;
    let p = 0;
    while (p < buf.length) {
      if (state === 0) {
        const m = buf.indexOf(0x4d, p);
        if (m < 0) break;
        p = m + 1;
        state = 1;
        continue;
      }
      const c = buf[p++]!;
      if (state === 1) state = c === 0x53 ? 2 : 0;
      else if (state === 2) state = c === 0x43 ? 3 : 0;
      else if (state === 3) state = c === 0x46 ? 4 : 0;
      else if (state >= 8 && state <= 11) {
        cabinetLength = state === 8 ? c : (cabinetLength | (c << (8 * (state - 8)))) >>> 0;
        state++;
      } else if (state >= 16 && state <= 18) {
        filesOffset = state === 16 ? c : (filesOffset | (c << (8 * (state - 16)))) >>> 0;
        state++;
      } else if (state === 19) {
        filesOffset = (filesOffset | (c << 24)) >>> 0;
        const cabOffset = offset + p - 20;
        let next = cabOffset + 4;
        if (cabOffset === 0) firstLength = cabinetLength;
        if (
          filesOffset < cabinetLength &&
          cabOffset + filesOffset < fileLength + SEARCH_LENGTH_SLACK_BYTES &&
          cabOffset + cabinetLength < fileLength + SEARCH_LENGTH_SLACK_BYTES
        ) {
          const parsed = await tryParseAt(file, cabOffset);
          if (parsed) {
            found.push(parsed);
            next = cabOffset + cabinetLength;
          }
        }
        state = 0;
        if (next >= fileLength) break scan;
        offset = next;
        continue scan;
      } else state++;
    }
    offset += buf.length;
  }
  if (
    firstLength !== undefined &&
    firstLength !== fileLength &&
    (found.length === 0 || found[0]!.header.offset === 0)
  ) {
    warnings.push(
      firstLength < fileLength
        ? `possible ${fileLength - firstLength} extra bytes at end of file`
        : `file possibly truncated by ${firstLength - fileLength} bytes`,
    );
  }
  return found;
}

/** Read the header area at `offset`; undefined when it is not a valid cabinet. */
async function tryParseAt(file: RandomAccessFile, offset: number): Promise<ParsedCabinet | undefined> {
  try {
    return await parseAt(file, offset);
  } catch (error) {
    if (error instanceof HeaderParseError) return undefined;
    throw error;
  }
}

/** Parse the cabinet at `offset`, reading more of the file while the header needs it. */
async function parseAt(file: RandomAccessFile, offset: number): Promise<ParsedCabinet> {
  let want = HEADER_READ_BYTES;
  for (;;) {
    const buf = await file.read(offset, want);
    try {
      return parseCabinet(buf, offset);
    } catch (error) {
      const more = error instanceof HeaderParseError && error.kind === 'truncated' && offset + buf.length < file.size;
      if (!more) throw error;
      want *= 2;
    }
  }
}

// ---- sets and merging (libmspack's cabd_merge) ----

function singleSet(part: CabinetPart, parsed: ParsedCabinet): CabSet {
  const folders: FolderNode[] = parsed.folders.map((f) => ({
    compressionType: f.compressionType,
    blockCount: f.blockCount,
    segments: [{ part, dataOffset: f.dataOffset }],
    mergePrev: undefined,
    mergeNext: undefined,
  }));
  const first = folders[0]!;
  const last = folders[folders.length - 1]!;
  const files: FileNode[] = [];
  for (const raw of parsed.files) {
    const idx = raw.folderIndex;
    const node: FileNode = { raw, folder: first };
    if (idx < FOLDER_INDEX_CONTINUED_FROM_PREV) node.folder = folders[idx]!;
    else {
      if (idx === FOLDER_INDEX_CONTINUED_TO_NEXT || idx === FOLDER_INDEX_CONTINUED_PREV_AND_NEXT) {
        node.folder = last;
        last.mergeNext ??= node;
      }
      if (idx === FOLDER_INDEX_CONTINUED_FROM_PREV || idx === FOLDER_INDEX_CONTINUED_PREV_AND_NEXT) {
        node.folder = first;
        first.mergePrev ??= node;
      }
    }
    files.push(node);
  }
  return { parts: [part], folders, files };
}

/** Join `left` and `right` (right follows left); throws when the continued folder does not match. */
export function mergeSets(left: CabSet, right: CabSet, warnings: string[]): CabSet {
  const lfol = left.folders[left.folders.length - 1]!;
  const rfol = right.folders[0]!;
  const lastLeft = left.parts[left.parts.length - 1]!.header;
  const firstRight = right.parts[0]!.header;
  if (lastLeft.setId !== firstRight.setId) warnings.push('merged cabinets with differing Set IDs');
  if (lastLeft.setIndex > firstRight.setIndex) warnings.push('merged cabinets with odd order');
  const parts = [...left.parts, ...right.parts];
  if (!lfol.mergeNext && !rfol.mergePrev) {
    return { parts, folders: [...left.folders, ...right.folders], files: [...left.files, ...right.files] };
  }
  if (!canMergeFolders(left, lfol, right, rfol, warnings)) {
    throw corrupt('the continued folder does not match across the cabinets of the set');
  }
  lfol.segments = [...lfol.segments, ...rfol.segments];
  // The block split between the two cabinets is counted in both.
  lfol.blockCount += rfol.blockCount - 1;
  if (!rfol.mergeNext || rfol.mergeNext.folder !== rfol) lfol.mergeNext = rfol.mergeNext;
  return {
    parts,
    folders: [...left.folders, ...right.folders.slice(1)],
    // The right cabinet lists the continued files again; keep the left copies.
    files: [...left.files, ...right.files].filter((f) => f.folder !== rfol),
  };
}

function canMergeFolders(left: CabSet, lfol: FolderNode, right: CabSet, rfol: FolderNode, warnings: string[]): boolean {
  if (lfol.compressionType !== rfol.compressionType) return false;
  if (lfol.blockCount + rfol.blockCount > FOLDER_MAX_BLOCKS) return false;
  if (!lfol.mergeNext || !rfol.mergePrev) return false;
  const lfiles = left.files.slice(left.files.indexOf(lfol.mergeNext));
  const rfiles = right.files.slice(right.files.indexOf(rfol.mergePrev));
  const same = (a: FileNode, b: FileNode | undefined): boolean =>
    b !== undefined && a.raw.offsetInFolder === b.raw.offsetInFolder && a.raw.size === b.raw.size;
  if (lfiles.every((l, i) => same(l, rfiles[i]))) return true;
  // Not an identical list: accept if at least one continued file is in both, as libmspack does.
  let matching = false;
  for (const l of lfiles) {
    if (rfiles.some((r) => same(l, r))) matching = true;
    else warnings.push(`merged file ${displayName(l.raw.rawName, false)} not listed in both cabinets`);
  }
  return matching;
}

/** cabextract's load_spanning_cabinets: extend backwards, then forwards, stopping at the first gap. */
async function loadSpanningParts(
  set: CabSet,
  basePath: string,
  opened: RandomAccessFile[],
  warnings: string[],
): Promise<CabSet> {
  const seen = new Set<string>([await realpath(basePath)]);
  let current = set;
  for (let n = 0; n < MAX_SPANNED_PARTS; n++) {
    const prev = current.parts[0]!.header.prevCabinet;
    if (!prev) break;
    const part = await openSpannedPart(basePath, prev.name, seen, opened, warnings);
    if (!part) break;
    try {
      current = mergeSets(part, current, warnings);
    } catch (error) {
      warnings.push(`can't prepend ${prev.name}: ${(error as Error).message}`);
      break;
    }
  }
  for (let n = 0; n < MAX_SPANNED_PARTS; n++) {
    const next = current.parts[current.parts.length - 1]!.header.nextCabinet;
    if (!next) break;
    const part = await openSpannedPart(basePath, next.name, seen, opened, warnings);
    if (!part) break;
    try {
      current = mergeSets(current, part, warnings);
    } catch (error) {
      warnings.push(`can't append ${next.name}: ${(error as Error).message}`);
      break;
    }
  }
  return current;
}

async function openSpannedPart(
  basePath: string,
  name: string,
  seen: Set<string>,
  opened: RandomAccessFile[],
  warnings: string[],
): Promise<CabSet | undefined> {
  const path = await findCabinetFile(dirname(basePath), name);
  if (!path) {
    warnings.push(`can't find ${name}`);
    return undefined;
  }
  const real = await realpath(path);
  if (seen.has(real)) {
    warnings.push(`${name} is already part of this set; not following the loop`);
    return undefined;
  }
  seen.add(real);
  const file = await openRandomAccessFile(path);
  opened.push(file);
  try {
    const parsed = await parseAt(file, 0);
    return singleSet({ file, header: parsed.header }, parsed);
  } catch (error) {
    if (!(error instanceof HeaderParseError)) throw error;
    warnings.push(`can't open ${name}: ${error.message}`);
    return undefined;
  }
}

const isMissingOrUnreadable = (error: unknown): boolean =>
  ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '');

/**
 * The file a header names, looked up beside the base cabinet: exact name first, then a
 * case-insensitive match (headers often say "Split-2.CAB" for split-2.cab). Names with path
 * separators are refused so a header cannot point outside the directory.
 */
async function findCabinetFile(dir: string, name: string): Promise<string | undefined> {
  if (!name || /[\\/\0]/.test(name) || name === '.' || name === '..') return undefined;
  const isFile = async (p: string): Promise<boolean> => {
    try {
      return (await stat(p)).isFile();
    } catch (error) {
      if (isMissingOrUnreadable(error)) return false; // not a candidate, as in cabextract
      throw error;
    }
  };
  const exact = join(dir, name);
  if (await isFile(exact)) return exact;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if (isMissingOrUnreadable(error)) return undefined; // the part is simply not found
    throw error;
  }
  const lower = name.toLowerCase();
  const match = entries.find((e) => e.toLowerCase() === lower);
  return match && (await isFile(join(dir, match))) ? join(dir, match) : undefined;
}

// ---- the public view ----

function buildCabinet(path: string, sets: CabSet[], opened: RandomAccessFile[], warnings: string[]): Cabinet {
  const folders: CabFolder[] = [];
  const files: CabFile[] = [];
  const parts: CabinetPart[] = [];
  for (const set of sets) {
    parts.push(...set.parts);
    const folderIndex = new Map<FolderNode, number>();
    for (const node of set.folders) {
      const method = node.compressionType & COMPRESSION_MASK;
      const compression =
        (Object.keys(COMPRESSION) as CompressionName[]).find((k) => COMPRESSION[k] === method) ?? 'unknown';
      folderIndex.set(node, folders.length);
      folders.push({
        index: folders.length,
        compressionType: node.compressionType,
        compression,
        description: describeCompression(node.compressionType),
        blockCount: node.blockCount,
        segments: node.segments,
        missingStart: node.mergePrev !== undefined,
      });
    }
    const unix = usesUnixSeparators(set.files.map((f) => f.raw.rawName));
    for (const node of set.files) {
      const { raw } = node;
      const utf8 = (raw.attributes & ATTR_UTF8_NAME) !== 0;
      const pathBytes = outputPathBytes(raw.rawName, utf8, unix);
      files.push({
        name: displayName(raw.rawName, utf8),
        rawName: raw.rawName,
        path: pathBytes.toString('utf8'),
        pathBytes,
        size: raw.size,
        folderIndex: folderIndex.get(node.folder)!,
        offsetInFolder: raw.offsetInFolder,
        date: dosDateTime(raw.date, raw.time),
        attributes: raw.attributes,
        utf8,
      });
    }
  }
  let closed: Promise<void> | undefined;
  return {
    path,
    header: parts[0]!.header,
    parts,
    folders,
    files,
    warnings,
    close: () => (closed ??= Promise.all(opened.map((f) => f.close())).then(() => undefined)),
  };
}
