/**
 * `patchline run --lab examples/lab/patch-night.yaml --transport ssh` patches every host of the
 * patch night through real sshd (one per host, on loopback) to the same report as the lab
 * transport: same outcome, cycles, reboots and result of every update on every host, same exit code.
 * Both runs go at once (two CLI processes), each with its own state file and lab directory.
 *
 * The scenario is patch-night.yaml itself, all ten hosts, with its clock 5× faster (timeScale 0.01
 * instead of 0.05): what is compared — outcomes, cycles, reboots, results — does not depend on the
 * clock, and most of the time goes to the agents' process starts anyway. The command path is the
 * real one.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../src/domain/report.ts';
import { explainedBySshd, PATCH_NIGHT, projection, SKIP_SSH, sshdLogsUnder, tempDir } from './ssh-helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A bound for each CLI run (all ten hosts take about 2 minutes on a quiet two-core machine), so a hung run fails with what it was doing instead of hanging CI. */
const RUN_TIMEOUT_MS = 420_000;

function cli(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(
        new Error(
          `patchline ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS} ms; its stderr ends:\n${stderr.slice(-4_000)}`,
        ),
      );
    }, RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** Every host of the patch night (no names on the command line means all of them). */
const HOSTS = ['web01', 'web02', 'web03', 'web04', 'app01', 'app02', 'sql01', 'sql02', 'dc01', 'dc02'] as const;

it('patch-night over SSH gives the same report as over the lab transport', { skip: SKIP_SSH }, async () => {
  const tmp = tempDir('pl-ssh-night-');
  try {
    const original = await readFile(PATCH_NIGHT, 'utf8');
    assert.match(original, /^timeScale: 0\.05$/m, 'patch-night.yaml still runs at timeScale 0.05');
    const scenario = join(tmp.dir, 'patch-night.yaml');
    await writeFile(scenario, original.replace(/^timeScale: 0\.05$/m, 'timeScale: 0.01'));
    const common = ['--lab', scenario, '--no-progress', '--log-format', 'json'];
    await explainedBySshd(
      () => sshdLogsUnder(join(tmp.dir, 'ssh')),
      async () => {
        const [ssh, lab] = await Promise.all([
          cli([
            'run',
            ...common,
            '--transport',
            'ssh',
            '--state',
            join(tmp.dir, 'ssh', 'state.sqlite'),
            '--report',
            join(tmp.dir, 'ssh.json'),
          ]),
          cli([
            'run',
            ...common,
            '--state',
            join(tmp.dir, 'lab', 'state.sqlite'),
            '--report',
            join(tmp.dir, 'lab.json'),
          ]),
        ]);
        const sshReport = JSON.parse(await readFile(join(tmp.dir, 'ssh.json'), 'utf8')) as RunReport;
        const labReport = JSON.parse(await readFile(join(tmp.dir, 'lab.json'), 'utf8')) as RunReport;
        // On a difference, say how each host ended over SSH (the JSON log went to stdout).
        const outcomes = JSON.stringify(sshReport.hosts, null, 1).slice(0, 20_000);
        assert.equal(ssh.code, lab.code, `${ssh.stderr}\nhosts over SSH: ${outcomes}`);
        assert.deepEqual(sshReport.hosts.map((h) => h.name).sort(), [...HOSTS].sort());
        assert.deepEqual(projection(sshReport), projection(labReport));
        // It really went over SSH: the transport said how each host streams.
        assert.equal(ssh.stderr.match(/patchline: ssh: \S+: stream: /g)?.length, HOSTS.length, ssh.stderr);
      },
    );
  } finally {
    tmp.cleanup();
  }
});
