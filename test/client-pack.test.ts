/**
 * Issue 9 behaviour 5 (client side): `patchline client pack` lays out a client folder whose
 * bundle really starts, and the agent refuses to run from a folder where one byte changed.
 * node.exe is a stand-in file here (no Windows node); the bundle is run with this machine's node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packClient } from '../src/cli/client-pack-command.ts';
import { PatchlineError } from '../src/domain/errors.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function run(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, argv as string[], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

function fakeNode(dir: string, content = 'MZ stand-in for node.exe\n'): string {
  const path = join(dir, 'node.exe');
  writeFileSync(path, content);
  return path;
}

test('client pack through the CLI: a versioned folder with the five kinds of file and their digests', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pl-pack-cli-'));
  const { code, stdout, stderr } = await run([
    '--import',
    'tsx',
    MAIN,
    'client',
    'pack',
    '--node',
    fakeNode(dir),
    '--out',
    join(dir, 'share'),
  ]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /laid out: .*share\/0\.1\.0/);
  const files = readdirSync(join(dir, 'share', '0.1.0')).sort();
  assert.ok(
    ['manifest.json', 'node.exe', 'patchline.mjs', 'wua.ps1'].every((f) => files.includes(f)),
    files.join(' '),
  );
  assert.ok(
    files.some((f) => f.endsWith('.pem')),
    'trust roots beside the bundle',
  );
  const manifest = JSON.parse(readFileSync(join(dir, 'share', '0.1.0', 'manifest.json'), 'utf8')) as {
    files: Record<string, { sha256: string }>;
  };
  assert.deepEqual(
    Object.keys(manifest.files).sort(),
    files.filter((f) => f !== 'manifest.json'),
  );
  const missing = await run([
    '--import',
    'tsx',
    MAIN,
    'client',
    'pack',
    '--node',
    join(dir, 'nope.exe'),
    '--out',
    join(dir, 'share'),
  ]);
  assert.equal(missing.code, 64);
  assert.match(missing.stderr, /error CLIENT_PACK_NODE_MISSING: --node .*nope\.exe/);
});

test('the packed agent runs its manifest check first: intact passes, one changed byte is refused with CLIENT_TAMPERED', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pl-pack-'));
  const { dir: client } = await packClient({ node: fakeNode(dir), out: join(dir, 'share'), version: '0.1.0' });
  const bundle = join(client, 'patchline.mjs');
  const badRequest = join(dir, 'request.json');
  writeFileSync(badRequest, '{}');

  const version = await run([bundle, '--version']);
  assert.equal(version.stdout.trim(), '0.1.0');
  // Intact: the check passes and the agent goes on to read the (invalid) request.
  const intact = await run([bundle, 'agent', 'cycle', '--request', badRequest]);
  assert.equal(intact.code, 64, intact.stderr);
  assert.match(intact.stderr, /BAD_CYCLE_REQUEST/);

  const ps = readFileSync(join(client, 'wua.ps1'));
  ps[10] = ps[10]! ^ 0x20;
  writeFileSync(join(client, 'wua.ps1'), ps);
  const tampered = await run([bundle, 'agent', 'cycle', '--request', badRequest]);
  assert.equal(tampered.code, 1);
  assert.match(
    tampered.stderr,
    /patchline: error CLIENT_TAMPERED: the client file .*wua\.ps1 does not match its manifest/,
  );
  assert.doesNotMatch(tampered.stderr, /BAD_CYCLE_REQUEST/, 'refused before reading the request');
});

test('the bundle itself is covered: a byte appended to patchline.mjs is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pl-pack-'));
  const { dir: client } = await packClient({
    node: fakeNode(dir),
    out: join(dir, 'share'),
    version: '0.1.0',
    smokeTest: false,
  });
  appendFileSync(join(client, 'patchline.mjs'), '\n');
  const result = await run([join(client, 'patchline.mjs'), 'agent', 'cycle', '--request', join(dir, 'none.json')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /CLIENT_TAMPERED: the client file .*patchline\.mjs/);
});

test('packing again: identical is a no-op; different content never overwrites a version folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pl-pack-'));
  const out = join(dir, 'share');
  const first = await packClient({ node: fakeNode(dir), out, version: '0.1.0', smokeTest: false });
  assert.equal(first.created, true);
  const again = await packClient({ node: fakeNode(dir), out, version: '0.1.0', smokeTest: false });
  assert.equal(again.created, false);
  await assert.rejects(
    packClient({ node: fakeNode(dir, 'another node\n'), out, version: '0.1.0', smokeTest: false }),
    (e: unknown) => e instanceof PatchlineError && e.code === 'CLIENT_PACK_EXISTS',
  );
  assert.equal(
    readFileSync(join(out, '0.1.0', 'node.exe'), 'utf8'),
    'MZ stand-in for node.exe\n',
    'the folder is untouched',
  );
  assert.deepEqual(readdirSync(out), ['0.1.0'], 'no temporary folder left behind');
  assert.ok(!existsSync(join(out, '.0.1.0.tmp-' + process.pid)));
});
