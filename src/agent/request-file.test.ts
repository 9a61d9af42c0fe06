import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PatchlineError } from '../domain/errors.ts';
import { parseCycleRequest, readCycleRequest } from './request-file.ts';

const valid = {
  runId: 'r-1',
  host: 'web01',
  cycle: 1,
  mode: 'install',
  reboot: 'if-required',
  filters: { classifications: ['Security Updates'] },
  exclude: [],
  installedEarlier: [],
  serverSelection: 'default',
  installerBusyTimeoutSeconds: 600,
  logHandoverTimeoutSeconds: 300,
  callback: { url: 'https://connector:8443/cycles/r-1/web01/1/events', token: 'top-secret' },
};

const badRequest = (pattern: RegExp) => (e: unknown) =>
  e instanceof PatchlineError && e.code === 'BAD_CYCLE_REQUEST' && e.exitCode === 64 && pattern.test(e.message);

describe('cycle request file', () => {
  it('accepts a valid request', () => {
    assert.equal(parseCycleRequest(valid).host, 'web01');
  });
  it('names the bad field, and never echoes the token', () => {
    assert.throws(() => parseCycleRequest({ ...valid, mode: 'patch' }), badRequest(/\/mode/));
    assert.throws(
      () => parseCycleRequest({ ...valid, callback: { url: 'ftp://x', token: 'top-secret' } }),
      (e: unknown) => badRequest(/\/callback\/url/)(e) && !(e as Error).message.includes('top-secret'),
    );
  });
  it('refuses an offline scan without a cab path, and a title that is not a regular expression', () => {
    assert.throws(() => parseCycleRequest({ ...valid, serverSelection: 'offline' }), badRequest(/offlineCabPath/));
    assert.throws(() => parseCycleRequest({ ...valid, filters: { title: '(unclosed' } }), badRequest(/title filter/));
  });
  it('reads a file (with a BOM, as Windows tools write it) and reports unreadable or non-JSON files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-request-'));
    try {
      writeFileSync(join(dir, 'ok.json'), `\uFEFF${JSON.stringify(valid)}`);
      assert.equal((await readCycleRequest(join(dir, 'ok.json'))).runId, 'r-1');
      writeFileSync(join(dir, 'bad.json'), '{ not json');
      await assert.rejects(readCycleRequest(join(dir, 'bad.json')), badRequest(/not JSON/));
      await assert.rejects(readCycleRequest(join(dir, 'missing.json')), badRequest(/cannot read/));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
