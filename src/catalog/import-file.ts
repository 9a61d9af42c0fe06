/**
 * `catalog import FILE`: check the cab's Authenticode signature, open it, import it.
 *
 * The CAB reader (src/catalog/cab/) and the signature check (src/catalog/authenticode/) are other
 * modules; they reach this file through the narrow CabToolkit interface, so the importer and its
 * tests do not depend on how the bytes are unpacked. `catalogSync` (src/catalog/sync.ts) calls
 * `importCatalogFile` with the file it downloaded.
 */
import { stat } from 'node:fs/promises';
import { PatchlineError } from '../domain/errors.ts';
import type { CatalogWriter } from '../store/catalog-writer.ts';
import { importCatalog, type ImportOptions, type ImportResult } from './importer.ts';
import { directorySource } from './source-dir.ts';
import type { CatalogSource } from './source.ts';

export interface CabToolkit {
  /** Verifies the Authenticode signature against trusted roots; throws a PatchlineError (with its own code) to reject. */
  verify(
    file: string,
    options: { readonly trustPems: readonly string[]; readonly signal?: AbortSignal },
  ): Promise<{ readonly signerSubject: string | null }>;
  /** Opens a wsusscn2-shaped cab as a CatalogSource. */
  open(file: string, options: { readonly tempDir?: string }): Promise<CatalogSource>;
}

export interface ImportFileOptions extends ImportOptions {
  /** PEM texts of extra trusted roots (the lab root, a site's own), besides Microsoft's. */
  readonly trustPems?: readonly string[];
  /** Import an already unpacked directory without a signature check (the operator asked). */
  readonly skipSignature?: boolean;
  readonly tempDir?: string;
}

/**
 * Verifies and imports one catalog file (or, with skipSignature, an unpacked directory).
 * A rejected signature leaves the store untouched: nothing is written before the check passed.
 */
export async function importCatalogFile(
  file: string,
  writer: CatalogWriter,
  toolkit: CabToolkit,
  options: ImportFileOptions = {},
): Promise<ImportResult & { readonly signerSubject: string | null }> {
  let info;
  try {
    info = await stat(file);
  } catch (cause) {
    throw new PatchlineError(
      'CATALOG_FILE_NOT_FOUND',
      `Cannot read ${file}: ${(cause as Error).message}. Give the path of a wsusscn2.cab.`,
      { cause, exitCode: 64, context: { file } },
    );
  }
  if (info.isDirectory()) {
    if (!options.skipSignature) {
      throw new PatchlineError(
        'CATALOG_UNVERIFIABLE',
        `${file} is a directory, whose signature cannot be checked. Import the signed wsusscn2.cab itself, or pass --skip-signature if you unpacked and checked it yourself.`,
        { exitCode: 64, context: { file } },
      );
    }
    const result = await importCatalog(directorySource(file), writer, { ...options, signerSubject: null });
    return { ...result, signerSubject: null };
  }
  let signerSubject: string | null = null;
  if (!options.skipSignature) {
    ({ signerSubject } = await toolkit.verify(file, { trustPems: options.trustPems ?? [], signal: options.signal }));
  }
  const source = await toolkit.open(file, { tempDir: options.tempDir });
  try {
    const result = await importCatalog(source, writer, { ...options, signerSubject });
    return { ...result, signerSubject };
  } finally {
    await source.close();
  }
}
