/**
 * Imports a catalog into the store: package.xml → updates and their graph, shards → KB,
 * severity, titles …, then the atomic switch (see src/store/catalog-writer.ts for the protocol).
 *
 * Memory stays bounded: package.xml is streamed in batches, shard blobs one at a time, and rows
 * go to the store in transactions of a few thousand. Readers keep seeing the previous catalog
 * until `switchCurrent`; if anything throws (bad XML, abort, a full disk) the half-written
 * version is deleted and the previous catalog stays current. If the process is killed instead,
 * the next import deletes the leftover `importing` version first.
 */
import { PatchlineError } from '../domain/errors.ts';
import { hostname } from 'node:os';
import {
  ImportBusyError,
  type CatalogWriter,
  type ExtendedInput,
  type LocalizedInput,
} from '../store/catalog-writer.ts';
import { parseIndexXml } from './index-xml.ts';
import { DEFAULT_BATCH_SIZE, readPackageXml, type PackageHeader } from './package-xml.ts';
import { coreUpdateType, decodeBlob, parseBlobName, parseExtendedBlob, parseLocalizedBlob } from './shards.ts';
import { XmlFragmentError } from './xml-tree.ts';
import type { CatalogSource } from './source.ts';

/**
 * Did the database fail (SQLite's SqliteError, PostgreSQL's DatabaseError, a dropped connection)
 * rather than the catalog's content? Told apart so the error says what to fix.
 */
export function isStoreFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'SqliteError' || error.constructor.name === 'DatabaseError') return true;
  return /Connection terminated|ECONNREFUSED|ECONNRESET|the database system is (shutting down|starting up)/i.test(
    error.message,
  );
}

/** Revisions per write transaction in the shard phase. */
const REVISIONS_PER_TRANSACTION = 5000;

interface MutableDetails {
  updateType?: string | null;
  extended?: ExtendedInput;
  primary?: LocalizedInput;
  fallback?: LocalizedInput;
  others?: { language: string; texts: LocalizedInput }[];
}

/** Names of rejected blobs kept for the result (the count is always complete). */
const SKIPPED_EXAMPLES = 10;
export const DEFAULT_LANGUAGES: readonly string[] = ['en'];

/**
 * Is the importer "host:pid" alive? Only a process on this host can be checked; one on another
 * host (a shared database) is assumed alive, since its rows must not be pulled away under it.
 */
export function isRunningHere(importer: string): boolean {
  const at = importer.lastIndexOf(':');
  const host = importer.slice(0, at);
  const pid = Number(importer.slice(at + 1));
  if (host !== hostname()) return true;
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else — still alive. ESRCH: gone.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type ImportPhase = 'package' | 'shards' | 'finalize' | 'switch' | 'done';

export interface ImportProgress {
  readonly phase: ImportPhase;
  readonly updates: number;
  readonly shardsDone: number;
  readonly shardsTotal: number;
  readonly blobs: number;
  /** Blobs the XML reader rejected: skipped, the rest of the import goes on. */
  readonly blobsSkipped: number;
}

export interface ImportOptions {
  readonly signerSubject?: string | null;
  /** Title languages to keep; the first also fills each update's own title. Default: English. */
  readonly languages?: readonly string[];
  readonly signal?: AbortSignal;
  /** Called after each batch; may be async (the CLI prints; tests pause or abort here). */
  readonly onProgress?: (progress: ImportProgress) => void | Promise<void>;
  readonly now?: () => Date;
  readonly batchSize?: number;
}

export interface ImportResult {
  readonly versionId: number;
  readonly header: PackageHeader | null;
  readonly updates: number;
  readonly files: number;
  readonly shards: number;
  readonly blobs: number;
  /** Blobs the XML reader rejected and the import skipped (their revision keeps what package.xml said). */
  readonly blobsSkipped: number;
  /** The first few of them: "package2.cab!x/123456: unknown entity &nbsp;". */
  readonly skippedExamples: readonly string[];
  readonly seconds: number;
}

/**
 * Imports `source` through `writer` and makes it the current catalog.
 *
 * @example
 *   const result = await importCatalog(directorySource('extracted'), catalogWriterFor(store));
 */
export async function importCatalog(
  source: CatalogSource,
  writer: CatalogWriter,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const now = options.now ?? (() => new Date());
  const started = performance.now();
  const languages = (options.languages ?? DEFAULT_LANGUAGES).map((l) => l.toLowerCase());
  const primaryLanguage = languages[0] ?? 'en';
  const signal = options.signal;
  let versionId: number;
  try {
    versionId = await writer.beginImport({
      source: source.description,
      signerSubject: options.signerSubject ?? null,
      now: now(),
      importer: `${hostname()}:${process.pid}`,
      isRunning: isRunningHere,
    });
  } catch (error) {
    if (!(error instanceof ImportBusyError)) throw error;
    throw new PatchlineError(
      'CATALOG_IMPORT_BUSY',
      `Another catalog import into this state file is running (${error.source}, process ${error.importer}, started ${error.startedAt}). Wait for it to finish, or stop that process, then try again.`,
      { cause: error },
    );
  }
  writer.bulkMode(true);
  try {
    const index = parseIndexXml(await source.indexXml(signal));
    const progress = {
      phase: 'package' as ImportPhase,
      updates: 0,
      shardsDone: 0,
      shardsTotal: index.shards.length,
      blobs: 0,
      blobsSkipped: 0,
    };
    const skippedExamples: string[] = [];
    // Revisions whose DefaultLanguage is not one asked for: their titles come from l/<DefaultLanguage>/
    // when no asked-for language has one (an update published only in, say, Japanese still gets a title).
    const fallbackLanguage = new Map<number, string>();
    const report = async (): Promise<void> => {
      // Let timers, signals and I/O callbacks run: the parse loop itself only awaits microtasks.
      await new Promise<void>((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
      await options.onProgress?.({ ...progress });
      signal?.throwIfAborted();
    };

    let header: PackageHeader | null = null;
    for await (const batch of readPackageXml(source.packageXml(signal), {
      batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
    })) {
      if (batch.header) {
        header = batch.header;
        await writer.setHeader(versionId, header);
      }
      await writer.writePackageBatch(versionId, batch.updates, batch.fileLocations);
      for (const u of batch.updates) {
        const lang = u.defaultLanguage?.toLowerCase();
        if (lang && !languages.includes(lang)) fallbackLanguage.set(u.revisionId, lang);
      }
      progress.updates += batch.updates.length;
      await report();
    }

    progress.phase = 'shards';
    for (const shard of index.shards) {
      // Blobs of one revision are merged first, so each revision costs one UPDATE, not three.
      let pending = new Map<number, MutableDetails>();
      const flush = async (): Promise<void> => {
        const work = pending;
        pending = new Map();
        await writer.applyDetails(versionId, work);
      };
      for await (const blob of source.shardBlobs(shard.name, signal)) {
        const name = parseBlobName(blob.name);
        if (!name) continue;
        const isFallback =
          name.kind === 'l' && name.language !== null && fallbackLanguage.get(name.revisionId) === name.language;
        const isWanted =
          name.kind === 'c' ||
          name.kind === 'x' ||
          isFallback ||
          (name.kind === 'l' && name.language !== null && languages.includes(name.language));
        if (!isWanted) continue;
        let details = pending.get(name.revisionId);
        if (!details) {
          details = {};
          pending.set(name.revisionId, details);
        }
        try {
          const text = decodeBlob(blob.bytes);
          if (name.kind === 'c') details.updateType = coreUpdateType(text);
          else if (name.kind === 'x') details.extended = parseExtendedBlob(text);
          else if (name.language === primaryLanguage) details.primary = parseLocalizedBlob(text);
          else if (isFallback) details.fallback = parseLocalizedBlob(text);
          else (details.others ??= []).push({ language: name.language!, texts: parseLocalizedBlob(text) });
        } catch (error) {
          // One malformed blob costs its own fields, never the whole import (real catalogs hold
          // about a million blobs); it is counted and named in the result.
          if (!(error instanceof XmlFragmentError) && !(error instanceof RangeError)) throw error;
          progress.blobsSkipped += 1;
          if (skippedExamples.length < SKIPPED_EXAMPLES)
            skippedExamples.push(`${shard.name}!${blob.name.replace(/\\/g, '/')}: ${error.message}`);
          continue;
        }
        progress.blobs += 1;
        if (pending.size >= REVISIONS_PER_TRANSACTION) {
          await flush();
          await report();
        }
      }
      await flush();
      progress.shardsDone += 1;
      await report();
    }

    progress.phase = 'finalize';
    await report();
    const counts = await writer.finalize(versionId, { shards: index.shards.length });
    progress.phase = 'switch';
    await report();
    await writer.switchCurrent(versionId, now());
    writer.bulkMode(false);
    progress.phase = 'done';
    await options.onProgress?.({ ...progress });
    return {
      versionId,
      header,
      updates: counts.updates,
      files: counts.files,
      shards: index.shards.length,
      blobs: progress.blobs,
      blobsSkipped: progress.blobsSkipped,
      skippedExamples,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    writer.bulkMode(false);
    // Leave the previous catalog current: drop what this import wrote. Should that fail too (the
    // database went away), the error that stopped the import is still the one reported, and the
    // next import deletes the leftover `importing` version.
    const cleanup = await writer.deleteVersion(versionId).then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    const leftover = cleanup
      ? ` Its partial rows could not be removed now (${cleanup.message}); the next import removes them.`
      : '';
    if (error instanceof PatchlineError) {
      if (!cleanup) throw error;
      throw new PatchlineError(error.code, `${error.message}${leftover}`, {
        cause: error,
        exitCode: error.exitCode,
        context: error.context,
      });
    }
    if (signal?.aborted)
      throw new PatchlineError(
        'CATALOG_IMPORT_ABORTED',
        `The catalog import from ${source.description} was aborted; the previous catalog is still current.${leftover}`,
        { cause: error },
      );
    if (isStoreFailure(error))
      throw new PatchlineError(
        'CATALOG_STORE_FAILED',
        `The store refused the catalog import from ${source.description}: ${(error as Error).message}. The previous catalog is still current; the cab is not at fault — check the database (disk space, connection, permissions) and import again.${leftover}`,
        { cause: error, context: { source: source.description } },
      );
    throw new PatchlineError(
      'CATALOG_MALFORMED',
      `The catalog ${source.description} could not be imported: ${(error as Error).message}. The previous catalog is still current; get a fresh wsusscn2.cab and import it again.${leftover}`,
      { cause: error, context: { source: source.description } },
    );
  }
}
