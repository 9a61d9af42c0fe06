/**
 * `patchline run` leaves a report on every way out, and the right one: after a resume, after an
 * internal error, when stdout is a closed pipe; a report path that cannot be written is refused
 * before anything starts; resuming tells what it does (or that the run is finished) and prints
 * the exact command to resume. Real CLI processes on the small lab scenario.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SMALL, readReport, run, start, workspace } from './cli-helpers.ts';

describe('a report every time', { concurrency: 3 }, () => {
  test('--report naming a directory is refused before anything starts, leaving no temp file and no state', async (t) => {
    const w = await workspace(t);
    const folder = join(w.dir, 'reports');
    await mkdir(folder);
    const r = await run(['run', '--lab', SMALL, '--state', w.state, '--report', folder]);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /REPORT_PATH_INVALID.*reports: is a directory/);
    assert.doesNotMatch(r.stdout, /exit 0/);
    assert.deepEqual(readdirSync(folder), []);
    assert.deepEqual(
      readdirSync(w.dir).filter((f) => f !== 'reports'),
      [],
      'no state, no lab, no temp file',
    );
  });

  test('Ctrl-C then a plain --resume rewrites the report the run was started with; the resume command names --state; one connector per run', async (t) => {
    const w = await workspace(t);
    const args = ['run', '--lab', SMALL, '--state', w.state, '--report', w.report];
    const first = start(args);
    const runId = /run (\S+) started/.exec(await first.line(/run \S+ started/))![1]!;
    await first.line(/cycle 1 started/);
    // A second job resuming the run while the first still drives it is refused, naming the owner.
    // The first is held stopped meanwhile, so it cannot finish before the second has started.
    first.child.kill('SIGSTOP');
    const twice = await run(['run', '--resume', runId, '--state', w.state]);
    assert.equal(twice.code, 64, twice.stderr);
    assert.match(twice.stderr, new RegExp(`RUN_IN_PROGRESS: Run ${runId} is being run by process ${first.child.pid}`));
    first.child.kill('SIGINT');
    first.child.kill('SIGCONT');
    const stopped = await first.done;
    assert.equal(stopped.code, 5, stopped.stderr);
    const cancelled = await readReport(w.report);
    assert.equal(cancelled.run.exitCode, 5);
    const hint = new RegExp(
      `patchline run --resume ${cancelled.run.id} --state ${w.state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`,
      'm',
    );
    assert.match(stopped.stderr, hint, 'the exact resume command, with the state file');

    // The scheduler job re-run with --resume added: same options, accepted; no --report needed.
    const resumed = await run([...args, '--resume', cancelled.run.id]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const report = await readReport(w.report);
    assert.deepEqual([report.run.id, report.run.outcome, report.run.exitCode], [cancelled.run.id, 'succeeded', 0]);

    // Different values are refused by name.
    const changed = await run(['run', '--resume', cancelled.run.id, '--state', w.state, '--max-cycles', '2']);
    assert.equal(changed.code, 64);
    assert.match(changed.stderr, /RESUME_CONFLICT.*--max-cycles 2 \(the run has 5\)/);

    // Resuming the finished run says so, with its outcome, and writes the report where asked.
    const again = join(w.dir, 'again.json');
    const finished = await run(['run', '--resume', cancelled.run.id, '--state', w.state, '--report', again]);
    assert.equal(finished.code, 0, finished.stderr);
    assert.match(finished.stdout, new RegExp(`Run ${cancelled.run.id} is already finished: succeeded, exit 0`));
    assert.equal((await readReport(again)).run.outcome, 'succeeded');

    // `patchline runs` lists it.
    const runs = await run(['runs', '--state', w.state]);
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(
      runs.stdout,
      new RegExp(
        `${cancelled.run.id}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+succeeded\\s+0\\s+install\\s+2: web01, web02`,
      ),
    );
  });

  test('an unknown run names the state file it looked in; a missing state file is not created', async (t) => {
    const w = await workspace(t);
    const missing = await run(['run', '--resume', '20261121-0512-7f3a1c', '--state', w.state]);
    assert.equal(missing.code, 64);
    assert.match(
      missing.stderr,
      new RegExp(`RUN_NOT_FOUND: No state file ${w.state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    assert.equal(existsSync(w.state), false);
    const scan = await run(['run', '--lab', SMALL, '--scan', 'web01', '--state', w.state]);
    assert.equal(scan.code, 0, scan.stderr);
    const unknown = await run(['run', '--resume', '20261121-0512-7f3a1c', '--state', w.state]);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /RUN_NOT_FOUND: No run 20261121-0512-7f3a1c in the state file .*state\.sqlite/);
  });

  test('a closed stdout pipe (`| tee`, then Ctrl-C) does not kill the run: exit 5 and a report', async (t) => {
    const w = await workspace(t);
    const first = start(['run', '--lab', SMALL, '--state', w.state, '--report', w.report]);
    await first.line(/cycle 1 started/);
    first.child.stdout!.destroy();
    first.child.kill('SIGINT');
    const stopped = await first.done;
    assert.equal(stopped.code, 5, stopped.stderr);
    assert.doesNotMatch(stopped.stderr, /EPIPE|internal error/);
    assert.equal((await readReport(w.report)).run.exitCode, 5);
  });

  test('an internal error mid-run (the state file damaged) still writes the report, exit 70', async (t) => {
    const w = await workspace(t);
    const first = start(['run', '--lab', SMALL, '--state', w.state, '--report', w.report]);
    await first.line(/cycle 1 started/);
    const db = new BetterSqlite3(w.state, { timeout: 10_000 });
    db.exec('drop table run_events');
    db.close();
    const failed = await first.done;
    assert.equal(failed.code, 70, failed.stderr);
    assert.match(failed.stderr, /ENGINE_FAILED/);
    assert.match(failed.stderr, /patchline run --resume \S+ --state /);
    assert.doesNotMatch(failed.stderr, /--resume \S+\.(\s|$)/, 'no resume hint without the state file');
    const report = await readReport(w.report);
    assert.equal(report.run.exitCode, 70);
    assert.equal(report.error?.code, 'ENGINE_FAILED');
    assert.deepEqual(
      report.hosts.map((h) => h.name),
      ['web01', 'web02'],
    );
  });
});
