/**
 * The command line the lab uses to start Patchline processes (agents, providers, the daemon).
 *
 * Starting `node --import tsx src/cli/main.ts` costs about half a second of CPU per process
 * (TypeScript is transpiled on every start), which a 500-host lab on two cores cannot afford.
 * So the lab builds ONE ESM bundle of src/cli/main.ts with esbuild into `$TMPDIR/patchline-bundle-<tree>/patchline.mjs`
 * (rebuilt only when a source file is newer) and starts `node patchline.mjs …`. If bundling or
 * the bundle's smoke test fails, it falls back to tsx and says so in the log.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, rename, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Packages that must stay outside the bundle: native addons and esbuild's own binary. */
const EXTERNAL_PACKAGES = ['better-sqlite3', 'esbuild', 'pg-native', 'cpu-features', 'ssh2'] as const;
/** A bundle that cannot print its version within this is broken (a load-time failure). */
const SMOKE_TEST_TIMEOUT_MS = 15_000;

export interface CliCommand {
  /** argv prefix: `[node, …flags, script]`; append the subcommand and its options. */
  readonly argv: readonly string[];
  /** True when argv runs the esbuild bundle, false when it runs the sources through tsx. */
  readonly bundled: boolean;
  /** Why the bundle is not used, when it is not. */
  readonly note?: string;
}

/** Where the sources live, when this file runs from a source tree (not from a bundle). */
function sourceTree(): { readonly repoRoot: string; readonly mainTs: string } | null {
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
  const mainTs = join(repoRoot, 'src', 'cli', 'main.ts');
  return existsSync(mainTs) && existsSync(join(repoRoot, 'src', 'lab', 'bundle.ts')) ? { repoRoot, mainTs } : null;
}

/**
 * The CLI run from the sources through tsx (absolute loader path, so any cwd works), or the
 * bundle this process already runs from.
 */
export function sourceCli(): CliCommand {
  const tree = sourceTree();
  if (tree === null) {
    // We already run from a bundle: start the same file.
    return { argv: [process.execPath, process.argv[1] ?? ''], bundled: true };
  }
  const tsxLoader = import.meta.resolve('tsx');
  return { argv: [process.execPath, '--import', tsxLoader, tree.mainTs], bundled: false };
}

async function newestMtimeMs(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestMtimeMs(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(path)).mtimeMs);
  }
  return newest;
}

async function mtimeMsOrZero(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

function smokeTest(bundlePath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [bundlePath, '--version'],
      { timeout: SMOKE_TEST_TIMEOUT_MS },
      (error, _stdout, stderr) => {
        if (error)
          reject(
            new Error(`bundle smoke test failed: ${error.message}${stderr ? `\n${stderr.slice(-2000)}` : ''}`, {
              cause: error,
            }),
          );
        else resolve();
      },
    );
  });
}

async function buildBundle(repoRoot: string, mainTs: string, outfile: string): Promise<void> {
  const { build } = await import('esbuild');
  const requireFromRepo = createRequire(join(repoRoot, 'package.json'));
  const tmp = `${outfile}.${process.pid}.tmp.mjs`;
  await build({
    entryPoints: [mainTs],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
    // Bundled CommonJS dependencies call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __plCreateRequire } from 'node:module'; const require = __plCreateRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'patchline-externals',
        setup(b) {
          const filter = new RegExp(`^(${EXTERNAL_PACKAGES.join('|')})(/.*)?$`);
          // The bundle lives in the lab's DIR, where node_modules is not found by walking up:
          // keep native packages external but import them by absolute path.
          b.onResolve({ filter }, (args) => {
            try {
              return { path: requireFromRepo.resolve(args.path), external: true };
            } catch (error) {
              // An optional native package that is not installed: leave the bare import; only
              // code that actually loads it would fail, and the smoke test tells. Anything else
              // (a broken package.json, a permission error) stops the build with its cause.
              if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
              return { path: args.path, external: true };
            }
          });
        },
      },
    ],
  });
  // Files the code reads beside itself (`new URL('./x', import.meta.url)`) must sit beside the bundle.
  for (const asset of await readdir(join(repoRoot, 'src', 'catalog', 'roots'))) {
    if (asset.endsWith('.pem'))
      await copyFile(join(repoRoot, 'src', 'catalog', 'roots', asset), join(dirname(outfile), asset));
  }
  await rename(tmp, outfile);
}

/**
 * The CLI the lab should start for agents and providers: the bundle in `DIR/.bundle/`, built or
 * rebuilt when a source file is newer, or tsx when bundling fails (with a note for the log).
 *
 * @example
 *   const cli = await ensureBundle(dir, (m) => log.warn(m));
 *   spawn(cli.argv[0], [...cli.argv.slice(1), 'agent', 'cycle', '--request', file]);
 */
export async function ensureBundle(dir: string, log: (message: string) => void = () => undefined): Promise<CliCommand> {
  const tree = sourceTree();
  if (tree === null) return sourceCli();
  // One bundle per source tree, shared by every lab (each run has its own lab DIR): building it
  // takes a second or two. Writes are atomic (temp name + rename), so concurrent labs are safe.
  void dir;
  const treeId = createHash('sha256').update(tree.repoRoot).digest('hex').slice(0, 12);
  const outfile = join(tmpdir(), `patchline-bundle-${treeId}`, 'patchline.mjs');
  try {
    const [sourcesMs, bundleMs] = await Promise.all([
      newestMtimeMs(join(tree.repoRoot, 'src')),
      mtimeMsOrZero(outfile),
    ]);
    if (bundleMs === 0 || sourcesMs > bundleMs) {
      await mkdir(dirname(outfile), { recursive: true });
      const started = Date.now();
      await buildBundle(tree.repoRoot, tree.mainTs, outfile);
      await smokeTest(outfile);
      log(`built ${outfile} in ${Date.now() - started} ms`);
    }
    return { argv: [process.execPath, outfile], bundled: true };
  } catch (error) {
    const note = `bundling failed, starting agents through tsx (slower): ${(error as Error).message}`;
    log(note);
    return { ...sourceCli(), note };
  }
}
