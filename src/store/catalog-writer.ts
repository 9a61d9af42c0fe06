/**
 * The catalog writer port: what the importer (src/catalog/importer.ts) needs from a store, and the
 * row shapes it hands over. Two implementations keep one import protocol (the atomic switch):
 * SQLite's in catalog-repo.ts (prepared statements on the raw better-sqlite3 handle) and
 * PostgreSQL's in catalog-repo-pg.ts (array-bound multi-row statements through the pg pool).
 *
 *   1. `beginImport` deletes any version left `importing` by a killed import, then creates a new
 *      version in state `importing`.
 *   2. Rows are written under that version id, one transaction per batch of a few thousand.
 *   3. `finalize` derives category names (and, on SQLite, the FTS5 title index) and the counts.
 *   4. `switchCurrent` runs ONE transaction: the old `current` becomes `previous`, the new
 *      version becomes `current`, and any older `previous` is deleted (one previous is kept).
 * Readers (src/catalog/query.ts) only read the version marked `current`, so they never see a half
 * import; an import that throws deletes its own version (`deleteVersion`).
 *
 * The methods are async because PostgreSQL's are; SQLite's do their work synchronously inside.
 */
import type { CatalogVersionState } from './schema-catalog.ts';

export interface UpdateRowInput {
  readonly updateId: string;
  readonly revisionId: number;
  readonly revisionNumber: number;
  readonly creationDate: string | null;
  readonly defaultLanguage: string | null;
  readonly isBundle: boolean;
  readonly isLeaf: boolean;
  readonly deploymentAction: string | null;
  readonly categories: readonly { readonly id: string; readonly type: string }[];
  readonly prerequisites: readonly { readonly updateId: string; readonly orGroup: number | null }[];
  readonly bundledBy: readonly number[];
  readonly supersededBy: readonly number[];
  readonly payloadFiles: readonly string[];
}

export interface FileLocationInput {
  readonly id: string;
  readonly url: string;
  readonly isIncluded: boolean;
}

export interface ExtendedInput {
  readonly kb: string | null;
  readonly msrcSeverity: string | null;
  readonly securityBulletinId: string | null;
  readonly supportUrl: string | null;
  readonly rebootBehavior: string | null;
  readonly impact: string | null;
  readonly maxDownloadSize: number | null;
  readonly browseOnly: boolean;
  readonly cveIds?: readonly string[];
  readonly files: readonly {
    readonly digest: string;
    readonly fileName: string | null;
    readonly size: number | null;
    readonly sha256: string | null;
  }[];
}

export interface LocalizedInput {
  readonly title: string | null;
  readonly description: string | null;
  readonly moreInfoUrl: string | null;
  readonly moreInfoUrls?: readonly string[];
  readonly supportUrl: string | null;
}

/** What the shard blobs of one revision say; any part may be missing (revisions without blobs exist). */
export interface RevisionDetails {
  readonly updateType?: string | null;
  readonly extended?: ExtendedInput;
  /** The primary language's texts: they fill the update's own title and description. */
  readonly primary?: LocalizedInput;
  /**
   * The update's own DefaultLanguage texts, when that is not a language asked for: they fill the
   * title only where no primary-language blob does (whichever blob arrives first).
   */
  readonly fallback?: LocalizedInput;
  /** Other languages, kept in catalog_titles. */
  readonly others?: readonly { readonly language: string; readonly texts: LocalizedInput }[];
}

/** Another import into the same store is still running. */
export class ImportBusyError extends Error {
  override readonly name = 'ImportBusyError';
  constructor(
    readonly importer: string,
    readonly source: string,
    readonly startedAt: string,
  ) {
    super(`an import of ${source} (${importer}) started ${startedAt} is still running`);
  }
}

export interface CatalogVersionRow {
  readonly id: number;
  readonly importer: string | null;
  readonly state: CatalogVersionState;
  readonly packageId: string | null;
  readonly creationDate: string | null;
  readonly source: string;
  readonly signerSubject: string | null;
  readonly startedAt: string;
  readonly importedAt: string | null;
  readonly updatesCount: number;
  readonly filesCount: number;
  readonly shardsCount: number;
}

/** Per-version tables, in the order a version is deleted (FTS rows go first, keyed by update row id). */
export const VERSIONED_TABLES = [
  'catalog_titles',
  'catalog_files',
  'catalog_update_files',
  'catalog_supersedence',
  'catalog_bundles',
  'catalog_prerequisites',
  'catalog_categories',
  'catalog_update_categories',
  'catalog_updates',
] as const;

/** A batch's worth of shard details, keyed by revision id (one UPDATE per revision). */
export type DetailsBatch = ReadonlyMap<number, RevisionDetails>;

export interface CatalogWriter {
  /**
   * Starts a version in state `importing`. Versions left `importing` by imports that are gone
   * (killed) are deleted first; one whose importer `isRunning` says is alive makes this throw
   * ImportBusyError instead of pulling its rows away under it.
   */
  beginImport(meta: {
    source: string;
    signerSubject: string | null;
    now: Date;
    importer: string;
    isRunning: (importer: string) => boolean;
  }): Promise<number>;
  setHeader(versionId: number, header: { packageId: string | null; creationDate: string | null }): Promise<void>;
  /** Writes one package.xml batch — updates with their links, and file locations — in one transaction. */
  writePackageBatch(
    versionId: number,
    updates: readonly UpdateRowInput[],
    files: readonly FileLocationInput[],
  ): Promise<void>;
  /**
   * Merges shard details into their revisions' rows (fields not given keep their value), in one
   * transaction. Files and titles named twice in a batch end as if written in map order.
   */
  applyDetails(versionId: number, details: DetailsBatch): Promise<void>;
  /** Bulk-load tuning on (true) or off (false), where the store has any (SQLite: a bigger page cache). */
  bulkMode(on: boolean): void;
  finalize(versionId: number, counts: { shards: number }): Promise<{ updates: number; files: number }>;
  switchCurrent(versionId: number, now: Date): Promise<void>;
  deleteVersion(versionId: number): Promise<void>;
  versions(): Promise<CatalogVersionRow[]>;
}

/** A catalog_versions row (either dialect's column values) as the port's CatalogVersionRow. */
export function toVersionRow(r: Record<string, unknown>): CatalogVersionRow {
  return {
    id: r.id as number,
    state: r.state as CatalogVersionState,
    packageId: r.package_id as string | null,
    creationDate: r.creation_date as string | null,
    source: r.source as string,
    signerSubject: r.signer_subject as string | null,
    importer: r.importer as string | null,
    startedAt: r.started_at as string,
    importedAt: r.imported_at as string | null,
    updatesCount: r.updates_count as number,
    filesCount: r.files_count as number,
    shardsCount: r.shards_count as number,
  };
}
