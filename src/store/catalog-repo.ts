/**
 * The catalog's write path and version bookkeeping (SQLite bulk path).
 *
 * Import protocol (the atomic switch):
 *   1. `beginImport` deletes any version left `importing` by a killed import, then creates a new
 *      version in state `importing`.
 *   2. Rows are written under that version id in large transactions with prepared statements on
 *      the raw better-sqlite3 handle (Store.sqlite) — Kysely's per-query overhead would dominate a
 *      350 000-update import.
 *   3. `finalize` derives category names and the FTS5 title index.
 *   4. `switchCurrent` runs ONE transaction: the old `current` becomes `previous`, the new
 *      version becomes `current`, and any older `previous` is deleted (one previous is kept).
 * Readers (src/catalog/query.ts) only read the version marked `current`, so they never see a half
 * import, and WAL gives them a consistent snapshot while the writer works.
 *
 * A PostgreSQL store would implement the same CatalogWriter with COPY; this file is SQLite's.
 */
import type BetterSqlite3 from 'better-sqlite3';
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

/** Page cache while importing: random-order index inserts (GUIDs, digests) thrash SQLite's 2 MB default. */
const BULK_CACHE_KIB = 48 * 1024;
const DEFAULT_CACHE_KIB = 2000;
const BULK_WAL_AUTOCHECKPOINT_PAGES = 64 * 1024;
const DEFAULT_WAL_AUTOCHECKPOINT_PAGES = 1000;

/** Per-version tables, in the order a version is deleted (FTS rows go first, keyed by update row id). */
const VERSIONED_TABLES = [
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
  }): number;
  setHeader(versionId: number, header: { packageId: string | null; creationDate: string | null }): void;
  /** Runs `fn` in one write transaction. */
  transaction<T>(fn: () => T): T;
  insertUpdates(versionId: number, updates: readonly UpdateRowInput[]): void;
  insertFileLocations(versionId: number, files: readonly FileLocationInput[]): void;
  /** Merges one revision's shard details into its row (fields not given keep their value). */
  applyDetails(versionId: number, revisionId: number, details: RevisionDetails): void;
  /** Bulk-load tuning on (true) or off (false): a bigger page cache while an import runs. */
  bulkMode(on: boolean): void;
  finalize(versionId: number, counts: { shards: number }): { updates: number; files: number };
  switchCurrent(versionId: number, now: Date): void;
  deleteVersion(versionId: number): void;
  versions(): CatalogVersionRow[];
}

/** The SQLite CatalogWriter over the raw better-sqlite3 handle of an open Store. */
export function sqliteCatalogWriter(sqlite: BetterSqlite3.Database): CatalogWriter {
  const hasFts = sqlite.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'catalog_updates_fts'`).get() !== undefined;
  const insertUpdate = sqlite.prepare(
    `INSERT INTO catalog_updates (version_id, revision_id, update_id, revision_number, creation_date, default_language, is_bundle, is_leaf, deployment_action, release_date)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertCategory = sqlite.prepare(
    `INSERT OR IGNORE INTO catalog_update_categories (version_id, revision_id, category_id, type) VALUES (?, ?, ?, ?)`,
  );
  const insertPrereq = sqlite.prepare(
    `INSERT INTO catalog_prerequisites (version_id, revision_id, or_group, prerequisite_update_id) VALUES (?, ?, ?, ?)`,
  );
  const insertBundle = sqlite.prepare(
    `INSERT OR IGNORE INTO catalog_bundles (version_id, member_revision_id, bundle_revision_id) VALUES (?, ?, ?)`,
  );
  const insertSuper = sqlite.prepare(
    `INSERT OR IGNORE INTO catalog_supersedence (version_id, revision_id, superseding_revision_id) VALUES (?, ?, ?)`,
  );
  const insertUpdateFile = sqlite.prepare(
    `INSERT OR IGNORE INTO catalog_update_files (version_id, revision_id, file_id) VALUES (?, ?, ?)`,
  );
  const upsertLocation = sqlite.prepare(
    `INSERT INTO catalog_files (version_id, file_id, url, is_included) VALUES (?, ?, ?, ?)
     ON CONFLICT (version_id, file_id) DO UPDATE SET url = excluded.url, is_included = excluded.is_included`,
  );
  const upsertFileDetail = sqlite.prepare(
    `INSERT INTO catalog_files (version_id, file_id, file_name, size, sha256) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (version_id, file_id) DO UPDATE SET file_name = excluded.file_name, size = excluded.size, sha256 = coalesce(excluded.sha256, sha256)`,
  );
  // One UPDATE per revision: every column keeps its value unless the blobs gave a new one. The
  // release date is not here: it is package.xml's Update/@CreationDate (real x/ blobs have none).
  // Title and description: the primary language wins, then what is there, then the fallback
  // (the update's DefaultLanguage), so the blob order inside a shard does not matter.
  const setDetails = sqlite.prepare(
    `UPDATE catalog_updates SET update_type = coalesce(?, update_type), kb = coalesce(?, kb), msrc_severity = coalesce(?, msrc_severity),
       security_bulletin_id = coalesce(?, security_bulletin_id), reboot_behavior = coalesce(?, reboot_behavior), impact = coalesce(?, impact),
       max_download_size = coalesce(?, max_download_size), browse_only = coalesce(?, browse_only), cve_ids = coalesce(?, cve_ids),
       title = coalesce(?, title, ?), description = coalesce(?, description, ?), more_info_url = coalesce(?, more_info_url, ?),
       more_info_urls = coalesce(?, more_info_urls, ?), support_url = coalesce(?, ?, support_url)
     WHERE version_id = ? AND revision_id = ?`,
  );
  const upsertTitle = sqlite.prepare(
    `INSERT INTO catalog_titles (version_id, revision_id, language, title, description) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (version_id, revision_id, language) DO UPDATE SET title = excluded.title, description = excluded.description`,
  );

  const writer: CatalogWriter = {
    beginImport({ source, signerSubject, now, importer, isRunning }) {
      return sqlite
        .transaction(() => {
          for (const v of writer.versions().filter((row) => row.state === 'importing')) {
            if (v.importer !== null && v.importer !== importer && isRunning(v.importer))
              throw new ImportBusyError(v.importer, v.source, v.startedAt);
            // A killed import left its rows under an `importing` version: they are garbage now.
            deleteRows(v.id);
          }
          const info = sqlite
            .prepare(
              `INSERT INTO catalog_versions (state, source, signer_subject, importer, started_at) VALUES ('importing', ?, ?, ?, ?)`,
            )
            .run(source, signerSubject, importer, now.toISOString());
          return Number(info.lastInsertRowid);
        })
        .immediate();
    },
    setHeader(versionId, header) {
      sqlite
        .prepare(`UPDATE catalog_versions SET package_id = ?, creation_date = ? WHERE id = ?`)
        .run(header.packageId, header.creationDate, versionId);
    },
    transaction(fn) {
      return sqlite.transaction(fn)();
    },
    insertUpdates(versionId, updates) {
      for (const u of updates) {
        insertUpdate.run(
          versionId,
          u.revisionId,
          u.updateId,
          u.revisionNumber,
          u.creationDate,
          u.defaultLanguage,
          u.isBundle ? 1 : 0,
          u.isLeaf ? 1 : 0,
          u.deploymentAction,
          u.creationDate,
        );
        for (const c of u.categories) insertCategory.run(versionId, u.revisionId, c.id, c.type);
        for (const p of u.prerequisites) insertPrereq.run(versionId, u.revisionId, p.orGroup, p.updateId);
        for (const b of u.bundledBy) insertBundle.run(versionId, u.revisionId, b);
        for (const s of u.supersededBy) insertSuper.run(versionId, u.revisionId, s);
        for (const f of u.payloadFiles) insertUpdateFile.run(versionId, u.revisionId, f);
      }
    },
    insertFileLocations(versionId, files) {
      for (const f of files) upsertLocation.run(versionId, f.id, f.url, f.isIncluded ? 1 : 0);
    },
    applyDetails(versionId, revisionId, d) {
      const x = d.extended;
      const l = d.primary;
      const f = d.fallback;
      const json = (values: readonly string[] | undefined): string | null =>
        values && values.length > 0 ? JSON.stringify(values) : null;
      setDetails.run(
        d.updateType ?? null,
        x?.kb ?? null,
        x?.msrcSeverity ?? null,
        x?.securityBulletinId ?? null,
        x?.rebootBehavior ?? null,
        x?.impact ?? null,
        x?.maxDownloadSize ?? null,
        x ? (x.browseOnly ? 1 : 0) : null,
        json(x?.cveIds),
        l?.title ?? null,
        f?.title ?? null,
        l?.description ?? null,
        f?.description ?? null,
        l?.moreInfoUrl ?? null,
        f?.moreInfoUrl ?? null,
        json(l?.moreInfoUrls),
        json(f?.moreInfoUrls),
        x?.supportUrl ?? null,
        l?.supportUrl ?? f?.supportUrl ?? null,
        versionId,
        revisionId,
      );
      for (const f of x?.files ?? []) upsertFileDetail.run(versionId, f.digest, f.fileName, f.size, f.sha256);
      for (const o of d.others ?? [])
        upsertTitle.run(versionId, revisionId, o.language, o.texts.title, o.texts.description);
    },
    bulkMode(on) {
      sqlite.pragma(`cache_size = ${on ? -BULK_CACHE_KIB : DEFAULT_CACHE_KIB * -1}`);
      // Checkpoint rarely while importing: the default (every 1000 pages) would copy and fsync
      // the ~350 MB being written about 85 times over.
      sqlite.pragma(`wal_autocheckpoint = ${on ? BULK_WAL_AUTOCHECKPOINT_PAGES : DEFAULT_WAL_AUTOCHECKPOINT_PAGES}`);
    },
    finalize(versionId, counts) {
      return sqlite.transaction(() => {
        // package.xml only names category ids; the names are the titles of the category
        // updates themselves (UpdateType Category), which the l/ blobs gave us.
        sqlite
          .prepare(
            `INSERT INTO catalog_categories (version_id, category_id, type, name)
             SELECT uc.version_id, uc.category_id, min(uc.type),
                    (SELECT u.title FROM catalog_updates u WHERE u.version_id = uc.version_id AND u.update_id = uc.category_id
                     ORDER BY u.revision_number DESC LIMIT 1)
             FROM catalog_update_categories uc WHERE uc.version_id = ? GROUP BY uc.version_id, uc.category_id`,
          )
          .run(versionId);
        if (hasFts) {
          sqlite
            .prepare(
              `INSERT INTO catalog_updates_fts (rowid, title) SELECT id, title FROM catalog_updates WHERE version_id = ? AND title IS NOT NULL`,
            )
            .run(versionId);
        }
        const updates = (
          sqlite.prepare(`SELECT count(*) AS n FROM catalog_updates WHERE version_id = ?`).get(versionId) as {
            n: number;
          }
        ).n;
        const files = (
          sqlite.prepare(`SELECT count(*) AS n FROM catalog_files WHERE version_id = ?`).get(versionId) as { n: number }
        ).n;
        sqlite
          .prepare(`UPDATE catalog_versions SET updates_count = ?, files_count = ?, shards_count = ? WHERE id = ?`)
          .run(updates, files, counts.shards, versionId);
        return { updates, files };
      })();
    },
    switchCurrent(versionId, now) {
      sqlite
        .transaction(() => {
          const row = sqlite.prepare(`SELECT state FROM catalog_versions WHERE id = ?`).get(versionId) as
            { state: string } | undefined;
          if (row?.state !== 'importing')
            throw new Error(`catalog version ${versionId} is ${row?.state ?? 'gone'}, not importing`);
          const older = sqlite.prepare(`SELECT id FROM catalog_versions WHERE state = 'previous'`).all() as {
            id: number;
          }[];
          for (const o of older) deleteRows(o.id);
          sqlite.prepare(`UPDATE catalog_versions SET state = 'previous' WHERE state = 'current'`).run();
          sqlite
            .prepare(`UPDATE catalog_versions SET state = 'current', imported_at = ? WHERE id = ?`)
            .run(now.toISOString(), versionId);
        })
        .immediate();
    },
    deleteVersion(versionId) {
      sqlite.transaction(() => deleteRows(versionId))();
    },
    versions() {
      const rows = sqlite.prepare(`SELECT * FROM catalog_versions ORDER BY id`).all() as Record<string, unknown>[];
      return rows.map((r) => ({
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
      }));
    },
  };

  function deleteRows(versionId: number): void {
    if (hasFts)
      sqlite
        .prepare(`DELETE FROM catalog_updates_fts WHERE rowid IN (SELECT id FROM catalog_updates WHERE version_id = ?)`)
        .run(versionId);
    for (const table of VERSIONED_TABLES) sqlite.prepare(`DELETE FROM ${table} WHERE version_id = ?`).run(versionId);
    sqlite.prepare(`DELETE FROM catalog_versions WHERE id = ?`).run(versionId);
  }

  return writer;
}
