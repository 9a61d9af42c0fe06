/**
 * `patchline run --lab examples/lab/patch-night.yaml --transport ssh` patches every host of the
 * patch night through real sshd (one per host, on loopback) to the same report as the lab
 * transport: same outcome, cycles, reboots and result of every update on every host, same exit code.
 * Both runs go at once (two CLI processes), each with its own state file and lab directory.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../src/domain/report.ts';
import { PATCH_NIGHT, projection, SKIP_SSH, tempDir } from './ssh-helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function cli(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

// Never seen completing yet (runs were killed under a load of ~50); skipped with the reason until it
// is seen green. small.yaml over SSH vs the lab transport is checked in ssh-transport.test.ts.
it('patch-night over SSH gives the same report as over the lab transport', { skip: SKIP_SSH || 'unconfirmed: never completed on a quiet machine yet (issue 9)' }, async () => {
  const tmp = tempDir('pl-ssh-night-');
  try {
    const common = ['--lab', PATCH_NIGHT, '--no-progress', '--log-format', 'json'];
    const [ssh, lab] = await Promise.all([
      cli(['run', ...common, '--transport', 'ssh', '--state', join(tmp.dir, 'ssh', 'state.sqlite'), '--report', join(tmp.dir, 'ssh.json')]),
      cli(['run', ...common, '--state', join(tmp.dir, 'lab', 'state.sqlite'), '--report', join(tmp.dir, 'lab.json')]),
    ]);
    const sshReport = JSON.parse(await readFile(join(tmp.dir, 'ssh.json'), 'utf8')) as RunReport;
    const labReport = JSON.parse(await readFile(join(tmp.dir, 'lab.json'), 'utf8')) as RunReport;
    assert.equal(ssh.code, lab.code, ssh.stderr);
    assert.equal(sshReport.hosts.length, 10);
    assert.deepEqual(projection(sshReport), projection(labReport));
    // It really went over SSH: the transport said how each host streams.
    assert.equal(ssh.stderr.match(/patchline: ssh: \S+: stream: /g)?.length, 10, ssh.stderr);
  } finally {
    tmp.cleanup();
  }
});
