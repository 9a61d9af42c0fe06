import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildManifest, filesToCopy, MANIFEST_FILE, parseManifest, verifyClientDir } from './manifest.ts';
import { PatchlineError } from '../domain/errors.ts';

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pl-manifest-'));
  writeFileSync(join(dir, 'patchline.mjs'), 'console.log("agent")\n');
  writeFileSync(join(dir, 'wua.ps1'), 'Write-Output 1\r\n');
  return dir;
}

const code = (c: string) => (e: unknown) => e instanceof PatchlineError && e.code === c;

test('a folder matching its manifest passes; one changed byte is refused naming the file', async () => {
  const dir = folder();
  const manifest = await buildManifest(dir, '0.1.0', ['patchline.mjs', 'wua.ps1']);
  writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  assert.deepEqual(await verifyClientDir(dir, ['wua.ps1']), manifest);
  const ps = readFileSync(join(dir, 'wua.ps1'));
  ps[0] = ps[0]! ^ 1;
  writeFileSync(join(dir, 'wua.ps1'), ps);
  await assert.rejects(
    verifyClientDir(dir),
    (e: unknown) => code('CLIENT_TAMPERED')(e) && /wua\.ps1 does not match its manifest/.test((e as Error).message),
  );
});

test('a missing file, a missing or malformed manifest, an unlisted required file', async () => {
  const dir = folder();
  await assert.rejects(verifyClientDir(dir), code('CLIENT_INCOMPLETE'));
  const manifest = await buildManifest(dir, '0.1.0', ['patchline.mjs', 'wua.ps1']);
  writeFileSync(
    join(dir, MANIFEST_FILE),
    JSON.stringify({ ...manifest, files: { ...manifest.files, 'node.exe': manifest.files['wua.ps1'] } }),
  );
  await assert.rejects(
    verifyClientDir(dir),
    (e: unknown) => code('CLIENT_INCOMPLETE')(e) && /node\.exe is missing/.test((e as Error).message),
  );
  writeFileSync(
    join(dir, MANIFEST_FILE),
    JSON.stringify({ ...manifest, files: { 'patchline.mjs': manifest.files['patchline.mjs'] } }),
  );
  await assert.rejects(verifyClientDir(dir, ['wua.ps1']), code('CLIENT_MANIFEST_INVALID'));
  assert.throws(() => parseManifest('{', 'm'), code('CLIENT_MANIFEST_INVALID'));
  assert.throws(
    () => parseManifest(JSON.stringify({ ...manifest, files: { '../evil': manifest.files['wua.ps1'] } }), 'm'),
    code('CLIENT_MANIFEST_INVALID'),
    'a manifest cannot point outside its folder',
  );
});

test('filesToCopy: only what differs, the manifest last; nothing when current', async () => {
  const dir = folder();
  const source = await buildManifest(dir, '0.1.0', ['patchline.mjs', 'wua.ps1']);
  assert.deepEqual(filesToCopy(source, null), ['patchline.mjs', 'wua.ps1', MANIFEST_FILE]);
  assert.deepEqual(filesToCopy(source, source), []);
  const changed = { ...source, files: { ...source.files, 'wua.ps1': { sha256: '0'.repeat(64), size: 3 } } };
  assert.deepEqual(filesToCopy(source, changed), ['wua.ps1', MANIFEST_FILE]);
  assert.deepEqual(
    filesToCopy(source, { ...source, version: '0.0.9' }),
    [MANIFEST_FILE],
    'same files, other version: only the manifest',
  );
});
