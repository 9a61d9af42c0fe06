/**
 * `patchline catalog sync`: bring the offline catalog up to date from Microsoft (or --source),
 * then import it — only when it changed, and only once its Authenticode signature checks out.
 *
 * The cab is kept in `<state dir>/catalog/`; a marker there records which download was imported,
 * so an unchanged sync neither downloads a body nor re-imports (about a second).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultCabToolkit } from '../catalog/cab-toolkit.ts';
import { importCatalogFile } from '../catalog/import-file.ts';
import type { ImportProgress } from '../catalog/importer.ts';
import { proxyDispatcher, redactProxy } from '../catalog/proxy.ts';
import { catalogStatus } from '../catalog/query.ts';
import { renderImportResult, renderProgress } from '../catalog/render.ts';
import { MICROSOFT_CATALOG_URL, syncCatalog, type SyncProgress, type SyncResult } from '../catalog/sync.ts';
import { usageError } from '../domain/errors.ts';
import { sqliteCatalogWriter } from '../store/catalog-repo.ts';
import { defaultStateFile } from '../store/paths.ts';
import type { CatalogCli } from './catalog-command.ts';

interface SyncCliOptions {
  state?: string;
  json?: boolean;
  source?: string;
  proxy?: string;
  trust?: string[];
  force?: boolean;
}

interface ImportedMarker {
  readonly sha256: string;
  readonly versionId: number;
}

const MARKER = 'wsusscn2.cab.imported.json';

async function readMarker(dir: string): Promise<ImportedMarker | null> {
  try {
    return JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as ImportedMarker;
  } catch (error) {
    // No marker (first sync) or a damaged one: the catalog is imported again, nothing is lost.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError) return null;
    throw error;
  }
}

async function writeMarker(dir: string, marker: ImportedMarker): Promise<void> {
  const file = join(dir, MARKER);
  await writeFile(`${file}.tmp`, `${JSON.stringify(marker)}\n`);
  await rename(`${file}.tmp`, file);
}

function formatBytes(n: number): string {
  return n >= 1_048_576 ? `${(n / 1_048_576).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`;
}

function progressLine(p: SyncProgress): string {
  switch (p.phase) {
    case 'check':
      return `checking ${p.url}`;
    case 'download': {
      if (p.totalBytes === null) return `downloading: ${formatBytes(p.bytes)}`;
      const pct = Math.floor((p.bytes / p.totalBytes) * 100);
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      return `downloading [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${formatBytes(p.bytes)} of ${formatBytes(p.totalBytes)}${p.resumedFrom > 0 ? ` (resumed at ${formatBytes(p.resumedFrom)})` : ''}`;
    }
    case 'verify':
      return 'checking the signature';
  }
}

function describeSync(r: SyncResult): string {
  switch (r.how) {
    case 'head-unchanged':
    case 'not-modified':
      return `The catalog is unchanged since ${r.meta.downloadedAt} (${formatBytes(r.meta.size)}); nothing downloaded.`;
    case 'resumed':
      return `Downloaded the rest of the catalog (${formatBytes(r.bytesTransferred)}; ${formatBytes(r.meta.size)} in all) and checked its signature.`;
    case 'downloaded':
      return `Downloaded the catalog (${formatBytes(r.meta.size)}) and checked its signature.`;
  }
}

export function registerCatalogSync(catalog: Command, cli: CatalogCli): void {
  cli
    .addCommon(
      catalog
        .command('sync')
        .description(
          'Download wsusscn2.cab when it changed (resuming a broken download), check its signature, and import it.',
        )
        .option('--source <url>', `where to download from (default: ${MICROSOFT_CATALOG_URL})`)
        .option('--proxy <url>', 'HTTP(S) proxy (default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment)')
        .option(
          '--trust <pem...>',
          'also trust this root certificate (PEM), e.g. the lab root written beside a lab catalog',
        )
        .option('--force', 'download and import even if nothing changed')
        .addHelpText(
          'after',
          `
The cab is kept beside the state file, in catalog/. A sync when nothing changed transfers no body
and does not re-import. An interrupted download resumes on the next sync. A cab whose signature
does not lead to Microsoft (or a --trust root) is deleted and never imported; exit 1.

Examples:
  patchline catalog sync
  HTTPS_PROXY=http://proxy.corp:3128 patchline catalog sync
  patchline catalog sync --source http://127.0.0.1:8080/microsoftupdate/v6/wsusscan/wsusscn2.cab --trust lab.cab.root.pem`,
        ),
    )
    .action(async (options: SyncCliOptions) => {
      const stateFile = options.state ?? defaultStateFile();
      const dir = join(dirname(resolve(stateFile)), 'catalog');
      const url = options.source ?? MICROSOFT_CATALOG_URL;
      try {
        new URL(url);
      } catch (cause) {
        throw usageError('USAGE_VALUE', `--source ${url}: not a URL.`, { cause });
      }
      const trustPems = await Promise.all(
        (options.trust ?? []).map(async (p) => {
          try {
            return await readFile(p, 'utf8');
          } catch (cause) {
            throw usageError(
              'TRUST_CERT_INVALID',
              `Cannot read the --trust certificate ${p}: ${(cause as Error).message}.`,
              { cause },
            );
          }
        }),
      );
      const toolkit = defaultCabToolkit();
      const tty = !options.json && Boolean(process.stderr.isTTY);
      const emit = (value: object) => process.stdout.write(`${JSON.stringify(value)}\n`);
      let lastPercent = -1;
      const onSync = (p: SyncProgress): void => {
        if (options.json) {
          if (p.phase === 'download' && p.totalBytes) {
            const pct = Math.floor((p.bytes / p.totalBytes) * 100);
            if (pct === lastPercent) return;
            lastPercent = pct;
          }
          emit({ event: 'progress', ...p });
        } else if (tty) {
          process.stderr.write(`\r\x1b[K${progressLine(p)}`);
        } else if (p.phase !== 'download') {
          process.stderr.write(`${progressLine(p)}\n`);
        }
      };
      if (options.proxy && !options.json) process.stderr.write(`using proxy ${redactProxy(options.proxy)}\n`);

      const sync = await syncCatalog({
        url,
        dir,
        dispatcher: proxyDispatcher(options.proxy),
        verify: async (file) => {
          await toolkit.verify(file, { trustPems });
        },
        onProgress: onSync,
        force: options.force ?? false,
      });
      if (tty) process.stderr.write('\r\x1b[K');

      await cli.withStore(options, async (store) => {
        const marker = await readMarker(dir);
        const status = await catalogStatus(store.db);
        const alreadyImported =
          !options.force &&
          marker !== null &&
          marker.sha256 === sync.meta.sha256 &&
          status.current?.id === marker.versionId;
        if (alreadyImported) {
          cli.print(
            options,
            {
              event: 'synced',
              changed: false,
              how: sync.how,
              imported: false,
              file: sync.file,
              catalog: status.current,
            },
            () =>
              `${describeSync(sync)} Catalog version ${status.current?.id} (package ${status.current?.packageId ?? '?'}) stays current.`,
          );
          return;
        }
        const onImport = (p: ImportProgress): void => {
          if (options.json) emit({ event: 'progress', ...p, phase: `import-${p.phase}` });
          else if (tty) process.stderr.write(`\r\x1b[K${renderProgress(p)}`);
        };
        // The signature was checked when the download completed; check again: the file may be old.
        const result = await importCatalogFile(sync.file, sqliteCatalogWriter(store.sqlite), toolkit, {
          trustPems,
          onProgress: onImport,
        });
        if (tty) process.stderr.write('\r\x1b[K');
        await writeMarker(dir, { sha256: sync.meta.sha256, versionId: result.versionId });
        cli.print(
          options,
          { event: 'synced', changed: sync.changed, how: sync.how, imported: true, file: sync.file, ...result },
          () => `${describeSync(sync)}\n${renderImportResult(result)}`,
        );
      });
    });
}
