/**
 * A lab run's waits shrink with the scenario's timeScale: the README's quick try
 * (examples/lab/faults.yaml) gives up on its lost host after a minute, not after the 20-minute
 * reboot timeout meant for real servers. The real CLI against the detached lab daemon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_REBOOT_TIMEOUT_MS, LAB_MIN_REBOOT_TIMEOUT_MS, labRebootTimeoutMs } from '../src/engine/types.ts';
import { stopLabDaemon } from '../src/lab/daemon-main.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FAULTS = join(ROOT, 'examples/lab/faults.yaml');
/** Far below the old 20 minutes, above the scaled timeout plus the lab's start-up. */
const RUN_BOUND_MS = 4 * 60_000;

test('labRebootTimeoutMs: the default scaled by timeScale, at least a minute, never above the real default', () => {
  assert.equal(labRebootTimeoutMs(1), DEFAULT_REBOOT_TIMEOUT_MS);
  assert.equal(labRebootTimeoutMs(0.5), DEFAULT_REBOOT_TIMEOUT_MS / 2);
  assert.equal(labRebootTimeoutMs(0.02), LAB_MIN_REBOOT_TIMEOUT_MS);
  assert.equal(labRebootTimeoutMs(5), DEFAULT_REBOOT_TIMEOUT_MS);
});

test(
  'faults.yaml: the host that never comes back is given up after the scaled timeout (1m), exit 3',
  { timeout: RUN_BOUND_MS + 30_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-lab-defaults-'));
    const state = join(dir, 'state.sqlite');
    const report = join(dir, 'report.json');
    let runId = '';
    try {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'src/cli/main.ts'),
          'run',
          'lost01',
          '--lab',
          FAULTS,
          '--state',
          state,
          '--report',
          report,
          '--no-progress',
        ],
        { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
      const killer = setTimeout(() => child.kill('SIGKILL'), RUN_BOUND_MS);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      clearTimeout(killer);
      assert.equal(code, 3, out);
      assert.match(out, /--reboot-timeout 1m/, 'the run says which timeout applies');
      const written = JSON.parse(await readFile(report, 'utf8')) as {
        run: { id: string };
        hosts: { outcome: string; message: string }[];
      };
      runId = written.run.id;
      const host = written.hosts[0]!;
      assert.equal(host.outcome, 'unreachable');
      assert.match(host.message, /within the reboot timeout \(1m\)/);
    } finally {
      // The run's lab daemon lives in lab/<run id> beside the state file.
      if (runId) await stopLabDaemon(join(dir, 'lab', runId));
      await rm(dir, { recursive: true, force: true });
    }
  },
);
