/**
 * The catalog's writers: `catalogWriterFor(store)` picks the dialect's, and this file holds
 * SQLite's (PostgreSQL's is catalog-repo-pg.ts; the protocol and row shapes are catalog-writer.ts).
 *
 * SQLite bulk path: rows are written with prepared statements on the raw better-sqlite3 handle
 * (Store.sqlite), one synchronous transaction per batch — Kysely's per-query overhead would
 * dominate a 350 000-update import. `finalize` also fills the FTS5 title index search uses.
 * WAL gives readers a consistent snapshot while the writer works.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { postgresCatalogWriter } from './catalog-repo-pg.ts';
import {
  ImportBusyError,
  toVersionRow,
  VERSIONED_TABLES,
  type CatalogVersionRow,
  type CatalogWriter,
  type RevisionDetails,
} from './catalog-writer.ts';
import type { Database_ } from './open.ts';

export * from './catalog-writer.ts';

/**
 * The writer for an open store of either dialect.
 *
 * @example await importCatalog(source, catalogWriterFor(await openDatabase('postgres://db01/patchline')))
 */
export function catalogWriterFor(store: Database_): CatalogWriter {
  if (store.dialect === 'sqlite') {
    if (!store.sqlite) throw new Error('a SQLite store without its better-sqlite3 handle');
    return sqliteCatalogWriter(store.sqlite);
  }
  return postgresCatalogWriter(store.db);
}

/** Page cache while importing: random-order index inserts (GUIDs, digests) thrash SQLite's 2 MB default. */
const BULK_CACHE_KIB = 48 * 1024;
const DEFAULT_CACHE_KIB = 2000;
const BULK_WAL_AUTOCHECKPOINT_PAGES = 64 * 1024;
const DEFAULT_WAL_AUTOCHECKPOINT_PAGES = 1000;

/** The SQLite CatalogWriter over the raw better-sqlite3 handle of an open Store. */
export function sqliteCatalogWriter(sqlite: BetterSqlite3.Database): CatalogWriter {
  let cacheBefore: number | undefined;
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

  const versions = (): CatalogVersionRow[] =>
    (sqlite.prepare(`SELECT * FROM catalog_versions ORDER BY id`).all() as Record<string, unknown>[]).map(toVersionRow);

  function insertUpdates(versionId: number, updates: Parameters<CatalogWriter['writePackageBatch']>[1]): void {
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
  }

  function applyOne(versionId: number, revisionId: number, d: RevisionDetails): void {
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
    for (const file of x?.files ?? [])
      upsertFileDetail.run(versionId, file.digest, file.fileName, file.size, file.sha256);
    for (const o of d.others ?? [])
      upsertTitle.run(versionId, revisionId, o.language, o.texts.title, o.texts.description);
  }

  // Every method does its work synchronously (better-sqlite3 is synchronous), so no other
  // statement on this connection can run inside one of its transactions.
  const writer: CatalogWriter = {
    async beginImport({ source, signerSubject, now, importer, isRunning }) {
      return sqlite
        .transaction(() => {
          for (const v of versions().filter((row) => row.state === 'importing')) {
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
    async setHeader(versionId, header) {
      sqlite
        .prepare(`UPDATE catalog_versions SET package_id = ?, creation_date = ? WHERE id = ?`)
        .run(header.packageId, header.creationDate, versionId);
    },
    async writePackageBatch(versionId, updates, files) {
      sqlite.transaction(() => {
        insertUpdates(versionId, updates);
        for (const f of files) upsertLocation.run(versionId, f.id, f.url, f.isIncluded ? 1 : 0);
      })();
    },
    async applyDetails(versionId, details) {
      sqlite.transaction(() => details.forEach((d, revisionId) => applyOne(versionId, revisionId, d)))();
    },
    bulkMode(on) {
      // Back to the connection's own size after (the store sets one: db.ts), not SQLite's default.
      if (on) {
        cacheBefore ??= sqlite.pragma('cache_size', { simple: true }) as number;
        sqlite.pragma(`cache_size = ${-BULK_CACHE_KIB}`);
      } else {
        sqlite.pragma(`cache_size = ${cacheBefore ?? -DEFAULT_CACHE_KIB}`);
        cacheBefore = undefined;
      }
      // Checkpoint rarely while importing: the default (every 1000 pages) would copy and fsync
      // the ~350 MB being written about 85 times over.
      sqlite.pragma(`wal_autocheckpoint = ${on ? BULK_WAL_AUTOCHECKPOINT_PAGES : DEFAULT_WAL_AUTOCHECKPOINT_PAGES}`);
    },
    async finalize(versionId, counts) {
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
    async switchCurrent(versionId, now) {
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
    async deleteVersion(versionId) {
      sqlite.transaction(() => deleteRows(versionId))();
    },
    async versions() {
      return versions();
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
