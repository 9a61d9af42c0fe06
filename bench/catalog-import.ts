/**
 * bench/catalog-import: import a full-size catalog and print one JSON line of figures.
 *
 * Generates (once; reused from the cache dir while its parameters match) a signed lab catalog
 * the size of Microsoft's 2026 wsusscn2.cab — at least 350 000 update entries, a package.xml of
 * 110 MB or more, 70 shards — then imports it into a fresh state file in a child process, so
 * peak RSS is the import's alone. Targets (2-core machine): import ≤ 90 s, peak RSS ≤ 400 MB.
 *
 *   npm run bench:catalog-import             # cache: $PATCHLINE_BENCH_CACHE or <tmp>/patchline-bench-catalog
 *   BENCH_EXTRA_UPDATES=20000 npm run bench:catalog-import   # a quick, smaller run
 *   BENCH_DB=postgres://… npm run bench:catalog-import         # into PostgreSQL instead (an empty database)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { syncCatalog } from '../src/catalog/sync.ts';
import { startCatalogUpstream } from '../src/lab/catalog-upstream.ts';
import { defaultCabToolkit } from '../src/catalog/cab-toolkit.ts';
import { importCatalogFile } from '../src/catalog/import-file.ts';
import { generateCatalog } from '../src/lab/catalog-gen.ts';
import { defaultCatalogPacker } from '../src/lab/catalog-gen-packer.ts';
import { parseScenario } from '../src/lab/scenario.ts';
import { catalogWriterFor, VERSIONED_TABLES } from '../src/store/catalog-repo.ts';
import { isPostgresUrl, openDatabase } from '../src/store/open.ts';

const EXTRA_UPDATES = Number(process.env.BENCH_EXTRA_UPDATES ?? 350_000);
const SHARDS = Number(process.env.BENCH_SHARDS ?? 70);
const IMPORT_TIMEOUT_MS = 15 * 60 * 1000;
const MB = 1e6;

const SCENARIO = `
catalog:
  - { key: ssu-2026-11, kb: 5046000, title: "2026-11 Servicing Stack Update for Windows Server 2022 for x64-based Systems (KB5046000)", classification: Security Updates, severity: Critical, products: [Windows Server 2022], released: 2026-11-11 }
  - { key: cu-2026-11, kb: 5044444, title: "2026-11 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5044444)", classification: Security Updates, severity: Critical, products: [Windows Server 2022], released: 2026-11-11, requires: [ssu-2026-11] }
hosts:
  - { name: bench01, product: Windows Server 2022 }
`;

async function generate(cacheDir: string): Promise<{
  cab: string;
  root: string;
  packageXmlBytes: number;
  updates: number;
  shards: number;
  generatedSeconds: number | null;
}> {
  const cab = join(cacheDir, 'wsusscn2.cab');
  const metaFile = join(cacheDir, 'meta.json');
  const wanted = { extraUpdates: EXTRA_UPDATES, shards: SHARDS };
  if (existsSync(cab) && existsSync(metaFile)) {
    const meta = JSON.parse(await readFile(metaFile, 'utf8')) as typeof wanted & {
      packageXmlBytes: number;
      updates: number;
    };
    if (meta.extraUpdates === wanted.extraUpdates && meta.shards === wanted.shards) {
      return {
        cab,
        root: `${cab}.root.pem`,
        packageXmlBytes: meta.packageXmlBytes,
        updates: meta.updates,
        shards: meta.shards,
        generatedSeconds: null,
      };
    }
  }
  await mkdir(cacheDir, { recursive: true });
  const started = performance.now();
  const scenario = parseScenario(SCENARIO, 'bench');
  const result = await generateCatalog(
    scenario,
    { out: cab, extraUpdates: EXTRA_UPDATES, shards: SHARDS, tempDir: cacheDir, rootDir: join(cacheDir, 'root') },
    defaultCatalogPacker(),
  );
  await writeFile(
    metaFile,
    JSON.stringify({ ...wanted, packageXmlBytes: result.packageXmlBytes, updates: result.updates }),
  );
  return {
    cab,
    root: result.rootPemFile,
    packageXmlBytes: result.packageXmlBytes,
    updates: result.updates,
    shards: result.shards,
    generatedSeconds: (performance.now() - started) / 1000,
  };
}

/** Child mode: import CAB into STATE (a SQLite file or a PostgreSQL URL) and print {seconds, rows, maxRssMB}. */
async function importChild(cab: string, root: string, state: string): Promise<void> {
  const store = await openDatabase(state);
  try {
    const result = await importCatalogFile(cab, catalogWriterFor(store), defaultCabToolkit(), {
      trustPems: [await readFile(root, 'utf8')],
    });
    let rows = 0;
    for (const table of VERSIONED_TABLES) {
      const row = await store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('version_id', '=', result.versionId)
        .executeTakeFirstOrThrow();
      rows += Number(row.n);
    }
    // ru_maxrss is in KiB on Linux.
    const cpu = process.cpuUsage();
    process.stdout.write(
      `${JSON.stringify({ seconds: result.seconds, updates: result.updates, rows, maxRssMB: (process.resourceUsage().maxRSS * 1024) / MB, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
    );
  } finally {
    await store.close();
  }
}

/** Syncs the cab from the lab's fake upstream twice; times the second, unchanged sync. */
async function unchangedResync(
  cab: string,
  root: string,
  cacheDir: string,
): Promise<{ seconds: number; bodyBytes: number }> {
  const upstream = await startCatalogUpstream({ file: cab });
  const dir = join(cacheDir, 'resync');
  await rm(dir, { recursive: true, force: true });
  const toolkit = defaultCabToolkit();
  const trustPems = [await readFile(root, 'utf8')];
  const verify = async (file: string) => {
    await toolkit.verify(file, { trustPems });
  };
  try {
    await syncCatalog({ url: upstream.url, dir, verify });
    const before = upstream.stats.bodyBytes;
    const started = performance.now();
    const second = await syncCatalog({ url: upstream.url, dir, verify });
    const seconds = (performance.now() - started) / 1000;
    if (second.changed) throw new Error('the unchanged re-sync downloaded the catalog again');
    return { seconds, bodyBytes: upstream.stats.bodyBytes - before };
  } finally {
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--import-child') {
    await importChild(process.argv[3]!, process.argv[4]!, process.argv[5]!);
    return;
  }
  const cacheDir = process.env.PATCHLINE_BENCH_CACHE ?? join(tmpdir(), 'patchline-bench-catalog');
  const gen = await generate(cacheDir);
  const state = process.env.BENCH_DB ?? join(cacheDir, 'bench-state.sqlite');
  const removeState = async (): Promise<void> => {
    if (isPostgresUrl(state)) return; // the caller's database: its catalog versions rotate on the next import
    for (const suffix of ['', '-wal', '-shm']) await rm(`${state}${suffix}`, { force: true });
  };
  await removeState();
  const self = fileURLToPath(import.meta.url);
  const wallStart = performance.now();
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', self, '--import-child', gen.cab, gen.root, state],
    { timeout: IMPORT_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
  );
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const child = JSON.parse(stdout.trim().split('\n').pop()!) as {
    seconds: number;
    updates: number;
    rows: number;
    maxRssMB: number;
    cpuSeconds: number;
  };
  await removeState();
  const resync = await unchangedResync(gen.cab, gen.root, cacheDir);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'catalog-import',
      store: isPostgresUrl(state) ? 'postgres' : 'sqlite',
      updates: child.updates,
      packageXmlMB: Number((gen.packageXmlBytes / MB).toFixed(1)),
      shards: gen.shards,
      cabMB: Number(((await stat(gen.cab)).size / MB).toFixed(1)),
      importSeconds: Number(child.seconds.toFixed(1)),
      processSeconds: Number(wallSeconds.toFixed(1)),
      // CPU time of the importing process (user + system): tells a slow disk or a busy machine apart from slow code.
      importCpuSeconds: Number(child.cpuSeconds.toFixed(1)),
      peakRssMB: Math.round(child.maxRssMB),
      rows: child.rows,
      rowsPerSecond: Math.round(child.rows / child.seconds),
      generatedSeconds: gen.generatedSeconds === null ? null : Number(gen.generatedSeconds.toFixed(1)),
      // A second `catalog sync` with the upstream unchanged (HEAD says so): no body, no import.
      resyncUnchangedSeconds: Number(resync.seconds.toFixed(3)),
      resyncBodyBytes: resync.bodyBytes,
      targets: { importSeconds: 90, peakRssMB: 400, resyncUnchangedSeconds: 1 },
    })}\n`,
  );
}

await main();
