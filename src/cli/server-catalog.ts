/**
 * The server's catalog: `patchline server` syncs wsusscn2.cab from its source (Microsoft, or the
 * lab's fake upstream) on a schedule and on demand (POST /api/v1/catalog/sync), with the same
 * code as `patchline catalog sync` (src/catalog/sync.ts: conditional download, resume, signature
 * check) and imports it only when it changed. The imported cab is what agents scan against: it is
 * kept under DATA/catalog/served/<sha256>.cab, so a newer download never replaces the file an
 * agent is reading, and the digest names it (the gateway serves it at an immutable URL).
 *
 * One sync at a time: a scheduled sync and an operator's request join the same run. The store may be
 * SQLite or PostgreSQL (`--db`): catalogWriterFor picks the writer.
 */
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultCabToolkit } from '../catalog/cab-toolkit.ts';
import { importCatalogFile } from '../catalog/import-file.ts';
import { proxyDispatcher } from '../catalog/proxy.ts';
import { catalogStatus } from '../catalog/query.ts';
import { syncCatalog } from '../catalog/sync.ts';
import type { CatalogService } from '../server/context.ts';
import type { CatalogFile } from '../server/gateway/gateway.ts';
import { catalogWriterFor } from '../store/catalog-repo.ts';
import type { Database_ } from '../store/open.ts';

/** WAPT and WSUS sync once a day; Microsoft republishes wsusscn2.cab about weekly. */
export const DEFAULT_CATALOG_SYNC_INTERVAL_MS = 24 * 3_600_000;
/** The same marker `patchline catalog sync` writes: which download the store's catalog came from. */
const MARKER = 'wsusscn2.cab.imported.json';

interface ImportedMarker {
  readonly sha256: string;
  readonly versionId: number;
}

export interface ServerCatalogOptions {
  readonly store: Database_;
  /** DATA/catalog: the downloaded cab, its metadata, the served copies. */
  readonly dir: string;
  readonly sourceUrl: string;
  /** Extra trusted roots (PEM text) besides Microsoft's: the lab root, for a lab server only. */
  readonly trustPems: readonly string[];
  readonly proxy?: string;
  readonly log: (message: string) => void;
  /** Told the body bytes each sync downloaded (the server's upstream-bytes metric). */
  readonly onUpstreamBytes?: (bytes: number) => void;
}

export interface ServerCatalog extends CatalogService {
  /** The imported cab agents download, or null before the first import. */
  current(): Promise<CatalogFile | null>;
}

async function readMarker(dir: string): Promise<ImportedMarker | null> {
  try {
    return JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as ImportedMarker;
  } catch {
    // No marker yet (first sync), or a damaged one: the catalog is imported (again); nothing is lost.
    return null;
  }
}

async function writeMarker(dir: string, marker: ImportedMarker): Promise<void> {
  const file = join(dir, MARKER);
  await writeFile(`${file}.tmp`, `${JSON.stringify(marker)}\n`);
  await rename(`${file}.tmp`, file);
}

export function createServerCatalog(options: ServerCatalogOptions): ServerCatalog {
  const { store, dir } = options;
  const servedDir = join(dir, 'served');
  const toolkit = defaultCabToolkit();
  let running: Promise<Awaited<ReturnType<CatalogService['sync']>>> | undefined;
  let cached: CatalogFile | null | undefined;

  /** The served copy of the imported cab (a hard link when the file system allows, else a copy). */
  async function publish(file: string, sha256: string): Promise<CatalogFile> {
    await mkdir(servedDir, { recursive: true });
    const path = join(servedDir, `${sha256}.cab`);
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await link(file, `${path}.tmp`).catch(async () => writeFile(`${path}.tmp`, await readFile(file)));
      await rename(`${path}.tmp`, path);
    }
    // Older served cabs: agents ask for the current one by digest, so the others can go.
    for (const name of await readdir(servedDir)) {
      if (name !== `${sha256}.cab`) await rm(join(servedDir, name), { force: true });
    }
    return { path, sha256, size: (await stat(path)).size };
  }

  async function current(): Promise<CatalogFile | null> {
    if (cached !== undefined) return cached;
    const marker = await readMarker(dir);
    const status = await catalogStatus(store.db);
    const path = marker ? join(servedDir, `${marker.sha256}.cab`) : null;
    const size = path
      ? await stat(path).then(
          (s) => s.size,
          () => null,
        )
      : null;
    // The store's current catalog must be the one the served cab came from, else agents would scan
    // against updates the server does not know.
    cached =
      marker && path && size !== null && status.current?.id === marker.versionId
        ? { path, sha256: marker.sha256, size }
        : null;
    return cached;
  }

  async function syncOnce(signal?: AbortSignal): Promise<Awaited<ReturnType<CatalogService['sync']>>> {
    const trustPems = [...options.trustPems];
    const result = await syncCatalog({
      url: options.sourceUrl,
      dir,
      dispatcher: proxyDispatcher(options.proxy),
      signal,
      verify: async (file) => {
        await toolkit.verify(file, { trustPems, signal });
      },
    });
    options.onUpstreamBytes?.(result.bytesTransferred);
    const marker = await readMarker(dir);
    const status = await catalogStatus(store.db);
    if (marker && marker.sha256 === result.meta.sha256 && status.current?.id === marker.versionId) {
      cached = await publish(result.file, marker.sha256);
      return {
        changed: false,
        versionId: marker.versionId,
        message: `The catalog is unchanged (${result.how}); version ${marker.versionId} stays current.`,
      };
    }
    options.log(`catalog: importing ${result.file} (${result.meta.size} bytes, ${result.how})`);
    const imported = await importCatalogFile(result.file, catalogWriterFor(store), toolkit, { trustPems, signal });
    await writeMarker(dir, { sha256: result.meta.sha256, versionId: imported.versionId });
    cached = await publish(result.file, result.meta.sha256);
    return {
      changed: true,
      versionId: imported.versionId,
      message: `Imported catalog version ${imported.versionId}: ${imported.updates} updates.`,
    };
  }

  return {
    current,
    sync(signal) {
      running ??= syncOnce(signal).finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}
