/**
 * `patchline catalog status | search | show | import` — the update catalog from the command line.
 * (`catalog sync`, which downloads wsusscn2.cab, is registered by its own module through the
 * `extraSubcommands` hook below and ends by calling `importCatalogFile` like `import` does.)
 *
 * Every command takes --state FILE (default: the user's state file, as for `patchline run`) and
 * --json. Human output is aligned text; --json prints JSON (import: NDJSON progress lines, then
 * the result).
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { EXIT, PatchlineError, usageError } from '../domain/errors.ts';
import { defaultCabToolkit } from '../catalog/cab-toolkit.ts';
import { importCatalogFile, type CabToolkit } from '../catalog/import-file.ts';
import type { ImportProgress } from '../catalog/importer.ts';
import { DEFAULT_SEARCH_LIMIT, catalogStatus, categoryNames, searchCatalog } from '../catalog/query.ts';
import { showUpdate } from '../catalog/update-details.ts';
import { renderDetails, renderHits, renderImportResult, renderProgress, renderStatus } from '../catalog/render.ts';
import { sqliteCatalogWriter, type CatalogWriter } from '../store/catalog-repo.ts';
import { KNOWN_SEVERITIES } from './run-options.ts';
import { openStore, type Store } from '../store/db.ts';
import { defaultStateFile } from '../store/paths.ts';

/** Test hook (env): after this many updates of package.xml, print a marker and pause, so a test can kill the import mid-way. */
export const HOLD_ENV = 'PATCHLINE_TEST_CATALOG_IMPORT_HOLD_AFTER_UPDATES';
/** The pause is bounded so a forgotten hook cannot hang a real import forever. */
const HOLD_MAX_MS = 60_000;
export const HOLD_MARKER = 'patchline-test: catalog import holding';

interface CommonOptions {
  state?: string;
  json?: boolean;
}

/** What a subcommand registered from elsewhere (catalog sync) gets: the same store opening and printing. */
export interface CatalogCli {
  withStore<T>(options: CommonOptions, fn: (store: Store) => Promise<T>): Promise<T>;
  print(options: CommonOptions, value: unknown, human: () => string): void;
  addCommon(cmd: Command): Command;
}

export type CatalogSubcommand = (catalog: Command, cli: CatalogCli) => void;

const cli: CatalogCli = {
  async withStore(options, fn) {
    const store = await openStore(options.state ?? defaultStateFile());
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  },
  print(options, value, human) {
    process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
  },
  addCommon(cmd) {
    return cmd
      .option('--state <file>', 'the state file (default: the per-user state file, or $PATCHLINE_STATE)')
      .option('--json', 'print JSON instead of text');
  },
};

/**
 * Registers `patchline catalog …`.
 *
 * @param extraSubcommands further subcommands, e.g. `catalog sync` from its own module:
 *   registerCatalogCommand(program, { extraSubcommands: [registerCatalogSync] })
 */
export function registerCatalogCommand(
  program: Command,
  deps: { toolkit?: CabToolkit; extraSubcommands?: readonly CatalogSubcommand[] } = {},
): void {
  const catalog = program
    .command('catalog')
    .description('The offline update catalog (wsusscn2.cab): import it, search it, show an update.')
    .addHelpText(
      'after',
      `
Examples:
  patchline catalog import wsusscn2.cab
  patchline catalog status
  patchline catalog search --kb 5044444
  patchline catalog search "cumulative update" --product "Windows Server 2022" --classification "Security Updates" --since 2026-10-01
  patchline catalog show KB5044444
  patchline catalog show 0a51549b-4e86-4a26-97d4-9e3567f24ea1 --json`,
    );

  cli
    .addCommon(
      catalog
        .command('status')
        .description('Which catalog is current, which is kept as previous, and whether an import is running.'),
    )
    .action(async (options: CommonOptions) => {
      await cli.withStore(options, async (store) => {
        const status = await catalogStatus(store.db);
        cli.print(options, status, () => renderStatus(status));
      });
    });

  cli
    .addCommon(
      catalog
        .command('search')
        .description(
          'Search the current catalog. Every criterion given must match; words of TEXT all must appear in the title.',
        )
        .argument('[text...]', 'words to find in the title')
        .option('--kb <number>', 'KB number (KB5044444 or 5044444)')
        .option('--product <name>', 'product category, e.g. "Windows Server 2022"')
        .option('--classification <name>', 'e.g. "Security Updates"')
        .option('--severity <severity>', 'MSRC severity: Critical, Important, Moderate, Low')
        .option('--since <date>', 'released on or after (YYYY-MM-DD)')
        .option('--until <date>', 'released on or before (YYYY-MM-DD)')
        .addOption(new Option('--limit <n>', 'at most this many results').default(DEFAULT_SEARCH_LIMIT))
        .option('--all', 'also list category entries and updates that only ship inside a bundle'),
    )
    .action(
      async (
        text: string[],
        options: CommonOptions & {
          kb?: string;
          product?: string;
          classification?: string;
          severity?: string;
          since?: string;
          until?: string;
          limit: string | number;
          all?: boolean;
        },
      ) => {
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1)
          throw new PatchlineError('USAGE', `--limit must be a whole number of at least 1, not "${options.limit}".`, {
            exitCode: 64,
          });
        // Like `run`: a misspelt name or an impossible date is refused, not answered with "No updates match".
        const severity =
          options.severity === undefined
            ? undefined
            : knownName(
                '--severity',
                options.severity,
                KNOWN_SEVERITIES.filter((s) => s !== 'none'),
              );
        for (const option of ['since', 'until'] as const)
          if (options[option] !== undefined) checkDate(`--${option}`, options[option]!);
        await cli.withStore(options, async (store) => {
          const product =
            options.product === undefined
              ? undefined
              : knownName('--product', options.product, await categoryNames(store.db, 'Product'));
          const classification =
            options.classification === undefined
              ? undefined
              : knownName(
                  '--classification',
                  options.classification,
                  await categoryNames(store.db, 'UpdateClassification'),
                );
          const hits = await searchCatalog(store.db, {
            ...options,
            product,
            classification,
            severity,
            text: text.join(' ') || undefined,
            limit,
          });
          cli.print(options, hits, () => renderHits(hits, limit));
        });
      },
    );

  cli
    .addCommon(
      catalog
        .command('show')
        .description(
          'Everything about one update: details, prerequisites, bundle, supersedence both ways, payload files.',
        )
        .argument('<id>', 'UpdateID (GUID) or KB number (KB5044444)'),
    )
    .action(async (id: string, options: CommonOptions) => {
      await cli.withStore(options, async (store) => {
        const found = await showUpdate(store.db, id);
        if (found.length === 0)
          throw new PatchlineError(
            'CATALOG_UPDATE_NOT_FOUND',
            `The current catalog has no update ${id}. Check the id, or search with \`patchline catalog search\`.`,
            { context: { update: id } },
          );
        cli.print(options, found, () => found.map(renderDetails).join('\n\n'));
      });
    });

  cli
    .addCommon(
      catalog
        .command('import')
        .description(
          'Import a wsusscn2.cab carried in by hand (air-gapped sites). Its signature is checked first; the previous catalog stays current until the import is complete.',
        )
        .argument('<file>', 'wsusscn2.cab (or, with --skip-signature, a directory it was unpacked into)')
        .option('--trust <pem...>', 'also trust this root certificate (PEM), e.g. a lab root')
        .option('--language <lang...>', 'title languages to keep (first one is the default title)', ['en'])
        .option(
          '--skip-signature',
          'do not check the signature (only for a directory you unpacked and checked yourself)',
        ),
    )
    .action(
      async (
        file: string,
        options: CommonOptions & { trust?: string[]; language: string[]; skipSignature?: boolean },
      ) => {
        const trustPems = await Promise.all(
          (options.trust ?? []).map(async (p) => {
            try {
              return await readFile(p, 'utf8');
            } catch (cause) {
              throw new PatchlineError(
                'USAGE',
                `Cannot read the --trust certificate ${p}: ${(cause as Error).message}.`,
                { cause, exitCode: 64 },
              );
            }
          }),
        );
        const holdAfter = process.env[HOLD_ENV] ? Number(process.env[HOLD_ENV]) : null;
        const tty = !options.json && process.stderr.isTTY;
        let held = false;
        const onProgress = async (p: ImportProgress): Promise<void> => {
          if (options.json) process.stdout.write(`${JSON.stringify({ event: 'progress', ...p })}\n`);
          else if (tty) process.stderr.write(`\r\x1b[K${renderProgress(p)}`);
          if (holdAfter !== null && !held && p.updates >= holdAfter) {
            held = true;
            process.stderr.write(`${HOLD_MARKER}\n`);
            await delay(HOLD_MAX_MS);
          }
        };
        await cli.withStore(options, async (store) => {
          try {
            const result = await importCatalogFile(
              file,
              unlessAlreadyCurrent(sqliteCatalogWriter(store.sqlite)),
              deps.toolkit ?? defaultCabToolkit(),
              {
                trustPems,
                languages: options.language,
                skipSignature: options.skipSignature,
                onProgress,
              },
            );
            if (tty) process.stderr.write('\r\x1b[K');
            cli.print(options, { event: 'imported', ...result }, () => renderImportResult(result));
          } catch (error) {
            if (!(error instanceof PatchlineError && error.code === 'CATALOG_ALREADY_CURRENT')) throw error;
            if (tty) process.stderr.write('\r\x1b[K');
            cli.print(options, { event: 'current', ...error.context }, () => error.message);
          }
        });
      },
    );

  // Further subcommands (catalog sync) plug in here.
  for (const register of deps.extraSubcommands ?? []) register(catalog, cli);
}

/**
 * A writer that stops the import as soon as the package header shows the catalog already
 * current (same PackageId and CreationDate): importing it again would only add a second copy.
 * The importer then drops what it wrote and the current catalog stays as it is.
 */
function unlessAlreadyCurrent(writer: CatalogWriter): CatalogWriter {
  return {
    ...writer,
    async setHeader(versionId, header) {
      const current = (await writer.versions()).find((v) => v.state === 'current');
      if (
        current &&
        header.packageId !== null &&
        current.packageId === header.packageId &&
        current.creationDate === header.creationDate
      ) {
        throw new PatchlineError(
          'CATALOG_ALREADY_CURRENT',
          `This catalog (package ${header.packageId}, created ${header.creationDate}) is already the current one, imported ${current.importedAt ?? current.startedAt}. Nothing to import.`,
          {
            exitCode: EXIT.OK,
            context: { packageId: header.packageId, creationDate: header.creationDate ?? '', versionId: current.id },
          },
        );
      }
      await writer.setHeader(versionId, header);
    },
  };
}

/** One of `known`, case-insensitively, returned as the catalog spells it; otherwise a usage error listing the names. */
function knownName(option: string, value: string, known: readonly string[]): string {
  const match = known.find((k) => k.toLowerCase() === value.trim().toLowerCase());
  if (match !== undefined) return match;
  const words = value
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w.length > 2);
  const near = known.filter((k) => words.some((w) => k.toLowerCase().includes(w)));
  const shown = (near.length > 0 ? near : known).slice(0, 15);
  throw usageError(
    'USAGE_VALUE',
    `${option}: "${value}" is not a name in the current catalog. ${near.length > 0 ? 'Did you mean' : 'Known'}: ${shown.join(', ')}${(near.length > 0 ? near : known).length > shown.length ? ', …' : ''}.`,
  );
}

/** YYYY-MM-DD must be a real day (2026-13-45 is not); other forms must parse as a date. */
function checkDate(option: string, value: string): void {
  const v = value.trim();
  const day = /^\d{4}-\d{2}-\d{2}$/.test(v);
  const ms = Date.parse(day ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(ms) || (day && new Date(ms).toISOString().slice(0, 10) !== v)) {
    throw new PatchlineError('CATALOG_BAD_DATE', `${option} ${value}: not a date; use YYYY-MM-DD (e.g. 2026-10-01).`, {
      exitCode: EXIT.USAGE,
    });
  }
}
