/**
 * The catalog writer on PostgreSQL (the protocol is catalog-writer.ts; SQLite's is catalog-repo.ts).
 *
 * Each batch the importer hands over (a few thousand updates, or the shard details of up to 5000
 * revisions) is one transaction of a handful of statements, whatever its size: every column goes
 * to the server as one array parameter and `unnest(…)` turns the arrays back into rows
 * (`INSERT … SELECT * FROM unnest($1::int[], $2::text[], …)`), so a batch costs a few round trips
 * through the store's pg pool, not one per row, and never meets the 65 535-parameter limit.
 *
 * Versions are switched and started under a lock on catalog_versions (SHARE ROW EXCLUSIVE: it
 * serialises writers with each other, not readers), so two imports cannot both take over a
 * leftover `importing` version or both become current. Readers keep their READ COMMITTED view of
 * the `current` version until the switch commits.
 *
 * Search on PostgreSQL needs no index of its own here: src/catalog/query.ts matches titles with
 * word-prefix regular expressions where SQLite uses its FTS5 table.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.ts';
import {
  ImportBusyError,
  toVersionRow,
  VERSIONED_TABLES,
  type CatalogWriter,
  type DetailsBatch,
  type FileLocationInput,
  type UpdateRowInput,
} from './catalog-writer.ts';

type Tx = Transaction<Database>;

/** A JSON array of strings, or null for none (as SQLite's writer stores them). */
const jsonList = (values: readonly string[] | undefined): string | null =>
  values && values.length > 0 ? JSON.stringify(values) : null;

/** Serialises writers of catalog_versions (beginImport, switchCurrent) without blocking readers. */
async function lockVersions(trx: Tx): Promise<void> {
  await sql`LOCK TABLE catalog_versions IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
}

async function deleteRows(trx: Tx, versionId: number): Promise<void> {
  for (const table of VERSIONED_TABLES)
    await sql`DELETE FROM ${sql.table(table)} WHERE version_id = ${versionId}`.execute(trx);
  await sql`DELETE FROM catalog_versions WHERE id = ${versionId}`.execute(trx);
}

async function insertUpdates(trx: Tx, versionId: number, updates: readonly UpdateRowInput[]): Promise<void> {
  if (updates.length === 0) return;
  const col = <T>(f: (u: UpdateRowInput) => T): T[] => updates.map(f);
  await sql`INSERT INTO catalog_updates (version_id, revision_id, update_id, revision_number, creation_date,
              default_language, is_bundle, is_leaf, deployment_action, release_date)
            SELECT ${versionId}::int, r.*, r.creation_date FROM unnest(${col((u) => u.revisionId)}::int[],
              ${col((u) => u.updateId)}::text[], ${col((u) => u.revisionNumber)}::int[], ${col((u) => u.creationDate)}::text[],
              ${col((u) => u.defaultLanguage)}::text[], ${col((u) => (u.isBundle ? 1 : 0))}::int[],
              ${col((u) => (u.isLeaf ? 1 : 0))}::int[], ${col((u) => u.deploymentAction)}::text[])
              AS r(revision_id, update_id, revision_number, creation_date, default_language, is_bundle, is_leaf, deployment_action)`.execute(
    trx,
  );
  // The link tables: one (revision, value) pair per row, flattened into two arrays each.
  const pairs = <T>(pick: (u: UpdateRowInput) => readonly T[]): [number[], T[]] => {
    const revs: number[] = [];
    const values: T[] = [];
    for (const u of updates) {
      for (const v of pick(u)) {
        revs.push(u.revisionId);
        values.push(v);
      }
    }
    return [revs, values];
  };
  const [catRevs, cats] = pairs((u) => u.categories);
  await sql`INSERT INTO catalog_update_categories (version_id, revision_id, category_id, type)
            SELECT ${versionId}::int, * FROM unnest(${catRevs}::int[], ${cats.map((c) => c.id)}::text[], ${cats.map((c) => c.type)}::text[])
            ON CONFLICT DO NOTHING`.execute(trx);
  const [preRevs, pres] = pairs((u) => u.prerequisites);
  await sql`INSERT INTO catalog_prerequisites (version_id, revision_id, or_group, prerequisite_update_id)
            SELECT ${versionId}::int, * FROM unnest(${preRevs}::int[], ${pres.map((p) => p.orGroup)}::int[], ${pres.map((p) => p.updateId)}::text[])`.execute(
    trx,
  );
  const [bunRevs, buns] = pairs((u) => u.bundledBy);
  await sql`INSERT INTO catalog_bundles (version_id, member_revision_id, bundle_revision_id)
            SELECT ${versionId}::int, * FROM unnest(${bunRevs}::int[], ${buns}::int[]) ON CONFLICT DO NOTHING`.execute(
    trx,
  );
  const [supRevs, sups] = pairs((u) => u.supersededBy);
  await sql`INSERT INTO catalog_supersedence (version_id, revision_id, superseding_revision_id)
            SELECT ${versionId}::int, * FROM unnest(${supRevs}::int[], ${sups}::int[]) ON CONFLICT DO NOTHING`.execute(
    trx,
  );
  const [fileRevs, files] = pairs((u) => u.payloadFiles);
  await sql`INSERT INTO catalog_update_files (version_id, revision_id, file_id)
            SELECT ${versionId}::int, * FROM unnest(${fileRevs}::int[], ${files}::text[]) ON CONFLICT DO NOTHING`.execute(
    trx,
  );
}

/** One row per file id, the last location winning (an upsert may not touch a row twice in one statement). */
function lastLocations(files: readonly FileLocationInput[]): FileLocationInput[] {
  return [...new Map(files.map((f) => [f.id, f])).values()];
}

async function upsertLocations(trx: Tx, versionId: number, files: readonly FileLocationInput[]): Promise<void> {
  const rows = lastLocations(files);
  if (rows.length === 0) return;
  await sql`INSERT INTO catalog_files (version_id, file_id, url, is_included)
            SELECT ${versionId}::int, * FROM unnest(${rows.map((f) => f.id)}::text[], ${rows.map((f) => f.url)}::text[],
              ${rows.map((f) => (f.isIncluded ? 1 : 0))}::int[])
            ON CONFLICT (version_id, file_id) DO UPDATE SET url = excluded.url, is_included = excluded.is_included`.execute(
    trx,
  );
}

async function applyDetails(trx: Tx, versionId: number, batch: DetailsBatch): Promise<void> {
  if (batch.size === 0) return;
  const entries = [...batch];
  const col = <T>(f: (d: (typeof entries)[number][1]) => T): T[] => entries.map(([, d]) => f(d));
  // The same merge as SQLite's one-UPDATE-per-revision: every column keeps its value unless the
  // blobs gave a new one; the primary language wins, then what is there, then the fallback.
  await sql`UPDATE catalog_updates AS u SET
              update_type = coalesce(d.update_type, u.update_type), kb = coalesce(d.kb, u.kb),
              msrc_severity = coalesce(d.msrc_severity, u.msrc_severity),
              security_bulletin_id = coalesce(d.bulletin, u.security_bulletin_id),
              reboot_behavior = coalesce(d.reboot, u.reboot_behavior), impact = coalesce(d.impact, u.impact),
              max_download_size = coalesce(d.max_download, u.max_download_size),
              browse_only = coalesce(d.browse_only, u.browse_only), cve_ids = coalesce(d.cve_ids, u.cve_ids),
              title = coalesce(d.title, u.title, d.fb_title), description = coalesce(d.description, u.description, d.fb_description),
              more_info_url = coalesce(d.more_info, u.more_info_url, d.fb_more_info),
              more_info_urls = coalesce(d.more_infos, u.more_info_urls, d.fb_more_infos),
              support_url = coalesce(d.x_support, d.l_support, u.support_url)
            FROM unnest(${entries.map(([rev]) => rev)}::int[], ${col((d) => d.updateType ?? null)}::text[],
              ${col((d) => d.extended?.kb ?? null)}::text[], ${col((d) => d.extended?.msrcSeverity ?? null)}::text[],
              ${col((d) => d.extended?.securityBulletinId ?? null)}::text[], ${col((d) => d.extended?.rebootBehavior ?? null)}::text[],
              ${col((d) => d.extended?.impact ?? null)}::text[], ${col((d) => d.extended?.maxDownloadSize ?? null)}::bigint[],
              ${col((d) => (d.extended ? (d.extended.browseOnly ? 1 : 0) : null))}::int[], ${col((d) => jsonList(d.extended?.cveIds))}::text[],
              ${col((d) => d.primary?.title ?? null)}::text[], ${col((d) => d.fallback?.title ?? null)}::text[],
              ${col((d) => d.primary?.description ?? null)}::text[], ${col((d) => d.fallback?.description ?? null)}::text[],
              ${col((d) => d.primary?.moreInfoUrl ?? null)}::text[], ${col((d) => d.fallback?.moreInfoUrl ?? null)}::text[],
              ${col((d) => jsonList(d.primary?.moreInfoUrls))}::text[], ${col((d) => jsonList(d.fallback?.moreInfoUrls))}::text[],
              ${col((d) => d.extended?.supportUrl ?? null)}::text[], ${col((d) => d.primary?.supportUrl ?? d.fallback?.supportUrl ?? null)}::text[])
              AS d(revision_id, update_type, kb, msrc_severity, bulletin, reboot, impact, max_download, browse_only, cve_ids,
                   title, fb_title, description, fb_description, more_info, fb_more_info, more_infos, fb_more_infos, x_support, l_support)
            WHERE u.version_id = ${versionId} AND u.revision_id = d.revision_id`.execute(trx);

  // File details: several revisions may name one digest; merged here as SQLite's row-by-row
  // upserts would leave it (the last name and size, the last sha256 given).
  const files = new Map<string, { fileName: string | null; size: number | null; sha256: string | null }>();
  const titles = new Map<string, { rev: number; language: string; title: string | null; description: string | null }>();
  for (const [rev, d] of entries) {
    for (const f of d.extended?.files ?? [])
      files.set(f.digest, {
        fileName: f.fileName,
        size: f.size,
        sha256: f.sha256 ?? files.get(f.digest)?.sha256 ?? null,
      });
    for (const o of d.others ?? [])
      titles.set(`${rev} ${o.language}`, {
        rev,
        language: o.language,
        title: o.texts.title,
        description: o.texts.description,
      });
  }
  if (files.size > 0) {
    const rows = [...files];
    await sql`INSERT INTO catalog_files (version_id, file_id, file_name, size, sha256)
              SELECT ${versionId}::int, * FROM unnest(${rows.map(([id]) => id)}::text[], ${rows.map(([, f]) => f.fileName)}::text[],
                ${rows.map(([, f]) => f.size)}::bigint[], ${rows.map(([, f]) => f.sha256)}::text[])
              ON CONFLICT (version_id, file_id) DO UPDATE SET file_name = excluded.file_name, size = excluded.size,
                sha256 = coalesce(excluded.sha256, catalog_files.sha256)`.execute(trx);
  }
  if (titles.size > 0) {
    const rows = [...titles.values()];
    await sql`INSERT INTO catalog_titles (version_id, revision_id, language, title, description)
              SELECT ${versionId}::int, * FROM unnest(${rows.map((t) => t.rev)}::int[], ${rows.map((t) => t.language)}::text[],
                ${rows.map((t) => t.title)}::text[], ${rows.map((t) => t.description)}::text[])
              ON CONFLICT (version_id, revision_id, language) DO UPDATE SET title = excluded.title, description = excluded.description`.execute(
      trx,
    );
  }
}

/** The CatalogWriter over an open PostgreSQL store's Kysely instance (its pg pool). */
export function postgresCatalogWriter(db: Kysely<Database>): CatalogWriter {
  const versions = async (q: Kysely<Database> | Tx = db) =>
    (await sql<Record<string, unknown>>`SELECT * FROM catalog_versions ORDER BY id`.execute(q)).rows.map(toVersionRow);

  return {
    beginImport({ source, signerSubject, now, importer, isRunning }) {
      return db.transaction().execute(async (trx) => {
        await lockVersions(trx);
        for (const v of (await versions(trx)).filter((row) => row.state === 'importing')) {
          if (v.importer !== null && v.importer !== importer && isRunning(v.importer))
            throw new ImportBusyError(v.importer, v.source, v.startedAt);
          // A killed import left its rows under an `importing` version: they are garbage now.
          await deleteRows(trx, v.id);
        }
        const inserted = await sql<{
          id: number;
        }>`INSERT INTO catalog_versions (state, source, signer_subject, importer, started_at)
          VALUES ('importing', ${source}, ${signerSubject}, ${importer}, ${now.toISOString()}) RETURNING id`.execute(
          trx,
        );
        return inserted.rows[0]!.id;
      });
    },
    async setHeader(versionId, header) {
      await sql`UPDATE catalog_versions SET package_id = ${header.packageId}, creation_date = ${header.creationDate}
                WHERE id = ${versionId}`.execute(db);
    },
    writePackageBatch(versionId, updates, files) {
      return db.transaction().execute(async (trx) => {
        await insertUpdates(trx, versionId, updates);
        await upsertLocations(trx, versionId, files);
      });
    },
    applyDetails(versionId, details) {
      return db.transaction().execute((trx) => applyDetails(trx, versionId, details));
    },
    bulkMode() {
      // Nothing to tune per connection: PostgreSQL's buffers are the server's.
    },
    finalize(versionId, counts) {
      return db.transaction().execute(async (trx) => {
        // package.xml only names category ids; the names are the titles of the category
        // updates themselves (UpdateType Category), which the l/ blobs gave us.
        await sql`INSERT INTO catalog_categories (version_id, category_id, type, name)
                  SELECT uc.version_id, uc.category_id, min(uc.type),
                         (SELECT u.title FROM catalog_updates u WHERE u.version_id = uc.version_id AND u.update_id = uc.category_id
                          ORDER BY u.revision_number DESC LIMIT 1)
                  FROM catalog_update_categories uc WHERE uc.version_id = ${versionId} GROUP BY uc.version_id, uc.category_id`.execute(
          trx,
        );
        const count = async (table: 'catalog_updates' | 'catalog_files'): Promise<number> =>
          (
            await sql<{
              n: number;
            }>`SELECT count(*) AS n FROM ${sql.table(table)} WHERE version_id = ${versionId}`.execute(trx)
          ).rows[0]!.n;
        const updates = await count('catalog_updates');
        const files = await count('catalog_files');
        await sql`UPDATE catalog_versions SET updates_count = ${updates}, files_count = ${files}, shards_count = ${counts.shards}
                  WHERE id = ${versionId}`.execute(trx);
        // The planner's statistics still describe the tables before this import (autovacuum
        // catches up later); the first searches after the switch should not pay for that.
        for (const table of VERSIONED_TABLES) await sql`ANALYZE ${sql.table(table)}`.execute(trx);
        return { updates, files };
      });
    },
    switchCurrent(versionId, now) {
      return db.transaction().execute(async (trx) => {
        await lockVersions(trx);
        const row = (await versions(trx)).find((v) => v.id === versionId);
        if (row?.state !== 'importing')
          throw new Error(`catalog version ${versionId} is ${row?.state ?? 'gone'}, not importing`);
        for (const older of (await versions(trx)).filter((v) => v.state === 'previous'))
          await deleteRows(trx, older.id);
        await sql`UPDATE catalog_versions SET state = 'previous' WHERE state = 'current'`.execute(trx);
        await sql`UPDATE catalog_versions SET state = 'current', imported_at = ${now.toISOString()} WHERE id = ${versionId}`.execute(
          trx,
        );
      });
    },
    deleteVersion(versionId) {
      return db.transaction().execute((trx) => deleteRows(trx, versionId));
    },
    versions: () => versions(),
  };
}
