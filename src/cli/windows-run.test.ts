import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { PatchlineError } from '../domain/errors.ts';
import { addWindowsRunOptions, clientVersion, openWindowsRunTransport, parseWindowsRunOptions } from './windows-run.ts';
import { readFileSync } from 'node:fs';

const code = (c: string) => (e: unknown) => e instanceof PatchlineError && e.code === c && e.exitCode === 64;

test('--client-share is required and must be a UNC path; --lab does not mix with it', () => {
  assert.deepEqual(parseWindowsRunOptions({ clientShare: '\\\\files01\\patchline\\' }, 'win32'), {
    clientShare: '\\\\files01\\patchline',
    inventory: null,
  });
  assert.throws(() => parseWindowsRunOptions({}, 'win32'), code('WINDOWS_NO_CLIENT_SHARE'));
  assert.throws(
    () => parseWindowsRunOptions({ clientShare: 'C:\\patchline' }, 'win32'),
    (e: unknown) => code('WINDOWS_NO_CLIENT_SHARE')(e) && /not a UNC path/.test((e as Error).message),
  );
  assert.throws(() => parseWindowsRunOptions({ clientShare: '\\\\f\\p', lab: 'x.yaml' }, 'win32'), code('USAGE'));
  assert.throws(
    () => parseWindowsRunOptions({ clientShare: '\\\\f\\p' }, 'linux'),
    code('TRANSPORT_UNAVAILABLE'),
    'refused before anything starts',
  );
});

test('the options join `run` once, whichever transport added --inventory first', () => {
  const run = new Command('run').option('--inventory <file>');
  addWindowsRunOptions(run);
  assert.deepEqual(
    run.options.map((o) => o.long),
    ['--inventory', '--client-share'],
  );
});

test('off Windows the transport is refused with what to use instead; on Windows it resolves inventory targets', async () => {
  const config = {
    kind: 'windows' as const,
    windows: { clientShare: '\\\\files01\\patchline', inventory: null },
    clientVersion: '0.1.0',
  };
  await assert.rejects(
    openWindowsRunTransport(config, ['web01'], 'linux'),
    (e: unknown) => code('TRANSPORT_UNAVAILABLE')(e) && /use --transport ssh/.test((e as Error).message),
  );
  const dir = mkdtempSync(join(tmpdir(), 'pl-winrun-'));
  writeFileSync(
    join(dir, 'servers.yaml'),
    'hosts:\n  web01: { address: 10.0.0.11 }\n  sql01: {}\ngroups:\n  sql: [sql01]\n',
  );
  const opened = await openWindowsRunTransport(
    { ...config, windows: { ...config.windows, inventory: join(dir, 'servers.yaml') } },
    [],
    'win32',
  );
  assert.deepEqual(opened.targets, ['web01', 'sql01']);
  assert.equal(opened.transport.name, 'windows');
  await opened.transport.close();
  await assert.rejects(openWindowsRunTransport(config, [], 'win32'), code('RUN_NO_TARGETS'));
});

test('the client folder a windows run uses is named after this version of Patchline', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(clientVersion(), pkg.version);
});
