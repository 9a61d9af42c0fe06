/**
 * Tables of the update catalog (wsusscn2.cab imports), as Kysely types. Filled in by
 * migrations/0002-catalog.ts; written by catalog-repo.ts and read through src/catalog/query.ts.
 *
 * Every row belongs to one catalog version. Readers only ever look at the version whose state is
 * `current`, so an import in progress (state `importing`) is invisible until the one-transaction
 * switch, and an import that dies leaves the previous catalog in place.
 */
import type { Generated } from 'kysely';

export const CATALOG_VERSION_STATES = ['importing', 'current', 'previous'] as const;
export type CatalogVersionState = (typeof CATALOG_VERSION_STATES)[number];

export interface CatalogVersionsTable {
  id: Generated<number>;
  state: CatalogVersionState;
  /** OfflineSyncPackage/@PackageId (GUID) when the catalog has one. */
  package_id: string | null;
  /** OfflineSyncPackage/@CreationDate: the catalog's own version stamp. */
  creation_date: string | null;
  /** Where it came from: a file path or URL. */
  source: string;
  /** Who runs (or ran) the import: "host:pid", so a second import can tell a live one from a killed one. */
  importer: string | null;
  /** Subject of the Authenticode signer, when the signature was checked. */
  signer_subject: string | null;
  /** ISO-8601 UTC; when the import started and, once current, when it finished. */
  started_at: string;
  imported_at: string | null;
  updates_count: number;
  files_count: number;
  shards_count: number;
}

export interface CatalogUpdatesTable {
  /** Row id; also the FTS5 rowid of the title index. */
  id: Generated<number>;
  version_id: number;
  revision_id: number;
  /** Lower-case GUID. */
  update_id: string;
  revision_number: number;
  /** Update/@CreationDate in package.xml. */
  creation_date: string | null;
  default_language: string | null;
  is_bundle: number;
  is_leaf: number;
  deployment_action: string | null;
  /** c/ Properties/@UpdateType: Software, Driver, Category, Detectoid … (null: no core blob). */
  update_type: string | null;
  /** Title in the default language (English unless the catalog says otherwise). */
  title: string | null;
  description: string | null;
  /** Digits only. */
  kb: string | null;
  msrc_severity: string | null;
  security_bulletin_id: string | null;
  /** x/ InstallationBehavior/@RebootBehavior as the blob says it (NeverReboots, AlwaysRequiresReboot, CanRequestReboot). */
  reboot_behavior: string | null;
  /** x/ InstallationBehavior/@Impact (Normal, Minor, RequiresExclusiveHandling). */
  impact: string | null;
  /** Update/@CreationDate (real x/ blobs carry no date of their own). */
  release_date: string | null;
  support_url: string | null;
  /** The first MoreInfoUrl. */
  more_info_url: string | null;
  /** Every MoreInfoUrl, a JSON array of strings (migration 0004). */
  more_info_urls: string | null;
  /** x/ CveID values, a JSON array of strings (migration 0004). */
  cve_ids: string | null;
  max_download_size: number | null;
  browse_only: number;
}

export interface CatalogUpdateCategoriesTable {
  version_id: number;
  revision_id: number;
  category_id: string;
  type: string;
}

/** A category's name, resolved from the category update's title (package.xml only has ids). */
export interface CatalogCategoriesTable {
  version_id: number;
  category_id: string;
  type: string;
  name: string | null;
}

export interface CatalogPrerequisitesTable {
  version_id: number;
  revision_id: number;
  /** null: required on its own; a number: one of an "Or" group (any member satisfies it). */
  or_group: number | null;
  prerequisite_update_id: string;
}

export interface CatalogBundlesTable {
  version_id: number;
  /** The leaf update inside the bundle. */
  member_revision_id: number;
  bundle_revision_id: number;
}

export interface CatalogSupersedenceTable {
  version_id: number;
  /** The older revision … */
  revision_id: number;
  /** … and the revision that supersedes it. */
  superseding_revision_id: number;
}

export interface CatalogUpdateFilesTable {
  version_id: number;
  revision_id: number;
  /** base64 SHA-1 of the file (FileLocation/@Id, File/@Digest). */
  file_id: string;
}

export interface CatalogFilesTable {
  version_id: number;
  file_id: string;
  url: string | null;
  is_included: number;
  file_name: string | null;
  size: number | null;
  /** base64 SHA-256 (x/ File/AdditionalDigest), when the blob has one. */
  sha256: string | null;
}

export interface CatalogTitlesTable {
  version_id: number;
  revision_id: number;
  language: string;
  title: string | null;
  description: string | null;
}

export interface CatalogTables {
  catalog_versions: CatalogVersionsTable;
  catalog_updates: CatalogUpdatesTable;
  catalog_update_categories: CatalogUpdateCategoriesTable;
  catalog_categories: CatalogCategoriesTable;
  catalog_prerequisites: CatalogPrerequisitesTable;
  catalog_bundles: CatalogBundlesTable;
  catalog_supersedence: CatalogSupersedenceTable;
  catalog_update_files: CatalogUpdateFilesTable;
  catalog_files: CatalogFilesTable;
  catalog_titles: CatalogTitlesTable;
}
