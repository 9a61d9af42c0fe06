import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { PatchlineError } from '../domain/errors.ts';
import { POWERSHELL_PROVIDER_SCRIPT, resolveProviderCommand } from './provider-command.ts';

describe('resolveProviderCommand', () => {
  it('takes PATCHLINE_PROVIDER_CMD as a JSON argv first', () => {
    assert.deepEqual(resolveProviderCommand({ PATCHLINE_PROVIDER_CMD: '["node","p.mjs","--host","web01"]' }, 'win32'), [
      'node',
      'p.mjs',
      '--host',
      'web01',
    ]);
  });
  it('runs wua.ps1 with Windows PowerShell on Windows', () => {
    const argv = resolveProviderCommand({}, 'win32', 'C:\\patchline\\src\\wua\\providers\\powershell\\wua.ps1');
    assert.deepEqual(argv, [
      'powershell.exe',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-File',
      'C:\\patchline\\src\\wua\\providers\\powershell\\wua.ps1',
    ]);
  });
  it('points the default script at the wua.ps1 that ships in src/wua/providers/powershell', () => {
    assert.equal(resolveProviderCommand({}, 'win32').at(-1), POWERSHELL_PROVIDER_SCRIPT);
    assert.ok(existsSync(POWERSHELL_PROVIDER_SCRIPT), POWERSHELL_PROVIDER_SCRIPT);
  });
  it('says to use a lab when there is no provider on this platform', () => {
    assert.throws(
      () => resolveProviderCommand({}, 'linux'),
      /PROVIDER_UNAVAILABLE|no WUA provider on this platform: run against a lab/,
    );
  });
  it('refuses a PATCHLINE_PROVIDER_CMD that is not a JSON array of strings', () => {
    for (const bad of ['node p.mjs', '[]', '{"argv":1}', '[1,2]']) {
      assert.throws(
        () => resolveProviderCommand({ PATCHLINE_PROVIDER_CMD: bad }, 'linux'),
        (e: unknown) => e instanceof PatchlineError && e.code === 'PROVIDER_UNAVAILABLE',
        bad,
      );
    }
  });
});
