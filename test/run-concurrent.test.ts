/**
 * Many `patchline run` processes on one state file at once — the README's "one job per server"
 * pattern under a scheduler that starts every job at the same second (OpCon, overlapping cron).
 * Real processes, a real SQLite file, the real lab: the store must take the lock in turn, never
 * fail a migration because a neighbour migrated first, and keep each run to its own rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopLabDaemon } from '../src/lab/daemon-main.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const JOBS = 8;
/** A busy 2-core machine starts 8 tsx processes slowly; a hang still fails instead of stalling CI. */
const RUN_TIMEOUT_MS = 240_000;

/** One host, a two-update chain with a reboot between: a few dozen writes per run, quickly. */
const SCENARIO = `timeScale: 0.01
catalog:
  - key: ssu
    kb: 5044444
    title: Servicing Stack Update (KB5044444)
    classification: Security Updates
    products: [Windows Server 2022]
    installSeconds: 5
    reboot: always
    released: 2026-11-10
  - key: lcu
    kb: 5044445
    title: Cumulative Update (KB5044445)
    classification: Security Updates
    products: [Windows Server 2022]
    installSeconds: 5
    released: 2026-11-10
    requires: [ssu]
hosts:
  - name: srv01
    product: Windows Server 2022
    rebootSeconds: 20
`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Ran> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

test(
  `${JOBS} runs started at once on one fresh state file all finish with exit 0 and their own complete report`,
  { timeout: RUN_TIMEOUT_MS + 30_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-concurrent-'));
    t.after(async () => {
      const labs = join(dir, 'lab');
      if (existsSync(labs)) for (const id of await readdir(labs)) await stopLabDaemon(join(labs, id));
      await rm(dir, { recursive: true, force: true });
    });
    const scenario = join(dir, 'one.yaml');
    await writeFile(scenario, SCENARIO);
    const state = join(dir, 'state.sqlite');
    const reports = Array.from({ length: JOBS }, (_, i) => join(dir, `report-${i}.json`));

    const results = await Promise.all(
      reports.map((report) =>
        run([
          'run',
          '--lab',
          scenario,
          '--lab-inprocess',
          '--state',
          state,
          '--report',
          report,
          '--log-format',
          'json',
        ]),
      ),
    );

    results.forEach((r, i) =>
      assert.equal(r.code, 0, `job ${i}: exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-1500)}`),
    );
    const ids = new Set<string>();
    for (const file of reports) {
      const report = JSON.parse(await readFile(file, 'utf8')) as {
        run: { id: string; outcome: string };
        hosts: { name: string; outcome: string; updates: { kb: string; result: string }[] }[];
      };
      assert.equal(report.run.outcome, 'succeeded', file);
      ids.add(report.run.id);
      assert.deepEqual(
        report.hosts.map((h) => [h.name, h.outcome]),
        [['srv01', 'compliant']],
      );
      assert.deepEqual(report.hosts[0]!.updates.map((u) => [u.kb, u.result]).sort(), [
        ['5044444', 'installed'],
        ['5044445', 'installed'],
      ]);
    }
    assert.equal(ids.size, JOBS, 'each job ran its own run');
    // Each run's log holds only its own events (no run wrote into another's rows).
    for (const r of results) {
      const runIds = new Set(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { runId: string }).runId),
      );
      assert.equal(runIds.size, 1);
    }
  },
);
