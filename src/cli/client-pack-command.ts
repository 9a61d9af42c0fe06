/**
 * `patchline client pack --node PATH --out DIR`: lays out the client that runs on Windows targets
 * (DESIGN.md §5) as `DIR/<version>/`:
 *   node.exe        the Node.js the administrator supplies (--node)
 *   patchline.mjs   the agent as ONE esbuild bundle (src/cli/agent-main.ts: no native modules)
 *   wua.ps1         the PowerShell WUA provider
 *   *.pem           the catalog trust roots (read beside the bundle, as in the lab's bundle)
 *   manifest.json   sha256 and size of each file; the agent refuses to run if one differs
 * The folder is built under a temporary name and renamed into place, so a failed pack leaves
 * nothing half-written; a version folder is never changed in place (agents may be running from it).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildManifest, MANIFEST_FILE, parseManifest, type ClientManifest } from '../agent/manifest.ts';
import { PatchlineError, usageError } from '../domain/errors.ts';
import { CLIENT_FILES } from '../transports/windows/agent-launch.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AGENT_ENTRY = join(REPO_ROOT, 'src', 'cli', 'agent-main.ts');
const PROVIDER_SCRIPT = join(REPO_ROOT, 'src', 'wua', 'providers', 'powershell', 'wua.ps1');
const ROOTS_DIR = join(REPO_ROOT, 'src', 'catalog', 'roots');
/** The bundle must print its version within this, or it is broken (a load-time failure). */
const SMOKE_TEST_TIMEOUT_MS = 20_000;

export interface PackOptions {
  readonly node: string;
  readonly out: string;
  readonly version: string;
  /** Runs `node <bundle> --version` with THIS machine's node (the target's node.exe may not run here). */
  readonly smokeTest?: boolean;
}

export interface PackResult {
  readonly dir: string;
  readonly manifest: ClientManifest;
  /** False when an identical folder was already there. */
  readonly created: boolean;
}

async function bundleAgent(outfile: string, version: string): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [AGENT_ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
    define: {
      // The agent checks its manifest only when it runs from a pack (agent-command.ts).
      'process.env.PATCHLINE_CLIENT_PACK': '"1"',
      'process.env.PATCHLINE_CLIENT_VERSION': JSON.stringify(version),
    },
    // Bundled CommonJS dependencies call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __plCreateRequire } from 'node:module'; const require = __plCreateRequire(import.meta.url);",
    },
  });
}

function smokeTest(bundle: string, version: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bundle, '--version'], { timeout: SMOKE_TEST_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error)
        reject(
          new Error(`the client bundle does not start: ${error.message}\n${stderr.slice(-2000)}`, { cause: error }),
        );
      else if (stdout.trim() !== version)
        reject(new Error(`the client bundle reports version ${stdout.trim()}, expected ${version}`));
      else resolve();
    });
  });
}

async function readManifestIfAny(dir: string): Promise<ClientManifest | null> {
  try {
    return parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'), join(dir, MANIFEST_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

const sameFiles = (a: ClientManifest, b: ClientManifest): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Lays out the client folder; returns where and its manifest.
 *
 * @example await packClient({ node: 'C:\\tools\\node.exe', out: '\\\\files01\\patchline', version: '0.1.0' })
 */
export async function packClient(options: PackOptions): Promise<PackResult> {
  const nodeStat = await stat(options.node).catch((error: unknown) => {
    throw usageError(
      'CLIENT_PACK_NODE_MISSING',
      `--node ${options.node}: ${(error as Error).message}. Give the node.exe the targets should run (Node.js 20 or later, Windows x64)`,
      { cause: error },
    );
  });
  if (!nodeStat.isFile())
    throw usageError('CLIENT_PACK_NODE_MISSING', `--node ${options.node} is not a file: give the path of node.exe`);
  await mkdir(options.out, { recursive: true });
  const dir = join(options.out, options.version);
  const tmp = join(options.out, `.${options.version}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    await copyFile(options.node, join(tmp, CLIENT_FILES.node));
    await bundleAgent(join(tmp, CLIENT_FILES.bundle), options.version);
    await copyFile(PROVIDER_SCRIPT, join(tmp, CLIENT_FILES.provider));
    const roots = (await readdir(ROOTS_DIR)).filter((f) => f.endsWith('.pem'));
    for (const pem of roots) await copyFile(join(ROOTS_DIR, pem), join(tmp, pem));
    if (options.smokeTest !== false) await smokeTest(join(tmp, CLIENT_FILES.bundle), options.version);
    const manifest = await buildManifest(tmp, options.version, [
      CLIENT_FILES.node,
      CLIENT_FILES.bundle,
      CLIENT_FILES.provider,
      ...roots,
    ]);
    await writeFile(join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    const existing = await readManifestIfAny(dir);
    if (
      existing !== null ||
      (await stat(dir).then(
        () => true,
        () => false,
      ))
    ) {
      if (existing !== null && sameFiles(existing, manifest)) return { dir, manifest, created: false };
      throw new PatchlineError(
        'CLIENT_PACK_EXISTS',
        `${dir} already holds a different client ${options.version}: version folders are never changed in place (agents may be running from it). Remove it first if no agent uses it`,
        { context: { file: dir } },
      );
    }
    await rename(tmp, dir);
    return { dir, manifest, created: true };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Registers `patchline client pack`. */
export function registerClientCommand(program: Command): void {
  const client = program.command('client').description('The client that runs on Windows targets.');
  client
    .command('pack')
    .description('Lay out the client (node.exe, agent bundle, wua.ps1, trust roots, manifest.json) in DIR/<version>.')
    .requiredOption('--node <path>', 'the node.exe the targets run (Node.js 20+, Windows x64); copied into the folder')
    .requiredOption(
      '--out <dir>',
      'where the versioned folder goes: a share (\\\\files01\\patchline) or a local directory',
    )
    .addHelpText(
      'after',
      `
The folder can sit on a share the targets' computer accounts can read (Domain Computers: read),
used with --transport windows --client-share, or be copied to %ProgramData%\\Patchline\\<version>
by a transport (only files whose digests differ). The agent checks manifest.json before it runs
and refuses a modified file (CLIENT_TAMPERED).`,
    )
    .action(async (options: { node: string; out: string }) => {
      const result = await packClient({
        node: options.node,
        out: options.out,
        version: program.version() ?? '0.0.0-dev',
      });
      const files = Object.entries(result.manifest.files).map(
        ([name, e]) => `  ${e.sha256}  ${String(e.size).padStart(10)}  ${name}`,
      );
      process.stdout.write(
        `${result.created ? 'laid out' : 'already laid out (identical)'}: ${result.dir}\n${files.join('\n')}\n`,
      );
    });
}
