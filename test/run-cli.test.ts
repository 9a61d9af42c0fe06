/**
 * `patchline run` end to end, as a scheduler starts it: the real CLI process, the detached lab
 * daemon, agents and simulated providers as separate processes (the real process path). Uses the
 * small scenarios in examples/lab/. Each test has its own state file and lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, SMALL, readReport, run, start, workspace, type Report } from './cli-helpers.ts';

const FAULTS = join(ROOT, 'examples/lab/faults.yaml');

async function hostState(
  dir: string,
  runId: string,
  host: string,
): Promise<{
  installed: Record<string, unknown>;
  history: { updateKey: string; operation: string; resultCode: string }[];
}> {
  return JSON.parse(await readFile(join(dir, 'lab', runId, 'hosts', host, 'state.json'), 'utf8'));
}

test('a servicing stack → cumulative update → .NET chain completes in the fewest cycles the reboots allow; JSON log lines carry the run id', async (t) => {
  const w = await workspace(t);
  const r = await run(['run', '--lab', SMALL, '--state', w.state, '--report', w.report, '--log-format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const report = await readReport(w.report);
  assert.equal(report.run.outcome, 'succeeded');
  for (const host of report.hosts) {
    assert.equal(host.outcome, 'compliant');
    // Cycle 1: SSU (no reboot) then, after a rescan, the CU → reboot. Cycle 2: .NET → reboot. Cycle 3: nothing left.
    assert.deepEqual([host.cycles, host.reboots], [3, 2], host.name);
    assert.deepEqual(host.updates.map((u) => [u.kb, u.result]).sort(), [
      ['2267602', 'installed'],
      ['5044444', 'installed'],
      ['5044445', 'installed'],
      ['5044447', 'installed'],
    ]);
  }
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { runId: string; kind: string });
  assert.ok(lines.length > 20);
  assert.ok(
    lines.every((l) => l.runId === report.run.id),
    'every NDJSON line names the run',
  );
});

test('--scan changes nothing on any host and reports what is available', async (t) => {
  const w = await workspace(t);
  const r = await run(['run', '--lab', SMALL, '--scan', '--state', w.state, '--report', w.report]);
  assert.equal(r.code, 0, r.stderr);
  const report = await readReport(w.report);
  for (const host of report.hosts) {
    assert.equal(host.outcome, 'pending');
    assert.ok(
      host.updates.length > 0 && host.updates.every((u) => u.result === 'available'),
      JSON.stringify(host.updates),
    );
    const state = await hostState(w.dir, report.run.id, host.name);
    assert.deepEqual(Object.keys(state.installed), [], `${host.name} had nothing installed by a scan`);
    assert.equal(state.history.length, 0);
  }
});

test('bad input is refused with exit 64, a message naming the problem, and nothing started', async (t) => {
  const w = await workspace(t);
  const badScenario = join(w.dir, 'bad.yaml');
  await writeFile(
    badScenario,
    'timeScale: 0.05\ncatalog:\n  - key: a\n    kb: 1234567\n    title: A\n    classification: Security Updates\n    products: [Windows Server 2022]\n    released: 2026-11-10\n    requires: [missing-key]\nhosts:\n  - name: h1\n    product: Windows Server 2022\n',
  );
  const cases: [string[], RegExp][] = [
    [['run', '--lab', SMALL, '--bogus'], /unknown option '--bogus'/],
    [['run', '--lab', badScenario], /bad\.yaml.*missing-key/s],
    [['run', '--lab', SMALL, '--kb', '@/nonexistent/kbs.txt'], /LIST_UNREADABLE.*nonexistent\/kbs\.txt/],
    [['run', 'web01', 'nosuchhost', '--lab', SMALL], /UNKNOWN_HOST.*nosuchhost/],
    [['run', '--lab', SMALL, '--reboot-timeout', '20'], /with a unit/],
  ];
  for (const [args, message] of cases) {
    const r = await run([...args, '--state', w.state]);
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(existsSync(w.state), false, `${args.join(' ')} created no state`);
    assert.equal(existsSync(join(w.dir, 'lab')), false, `${args.join(' ')} started no lab`);
  }
});

test("faults: a refused launch is reported with the scheduler's error, failures with HRESULT name and meaning; the rest finish", async (t) => {
  const w = await workspace(t);
  const r = await run([
    'run',
    'ok01',
    'retry01',
    'broken01',
    'loop01',
    '--lab',
    FAULTS,
    '--state',
    w.state,
    '--report',
    w.report,
  ]);
  assert.equal(r.code, 2, `${r.stdout.slice(-3000)}\n${r.stderr}`);
  const report = await readReport(w.report);
  const byName = Object.fromEntries(report.hosts.map((h) => [h.name, h]));
  assert.equal(byName.ok01!.outcome, 'compliant');
  assert.equal(byName.retry01!.outcome, 'compliant', 'the .NET update that failed once was retried after a reboot');
  assert.equal(byName.retry01!.updates.find((u) => u.kb === '5044447')?.attempts, 2);

  const broken = byName.broken01!;
  assert.equal(broken.outcome, 'failed');
  const cu = broken.updates.find((u) => u.kb === '5044445')!;
  assert.deepEqual([cu.result, cu.hresult, cu.attempts], ['failed', '0x800F0922', 2]);
  assert.match(cu.message ?? '', /CBS_E_INSTALLERS_FAILED/);
  assert.ok(
    broken.updates.some((u) => u.kb === '2267602' && u.result === 'installed'),
    "the host's other updates were still installed",
  );

  const loop = byName.loop01!;
  assert.equal(loop.outcome, 'failed');
  assert.match(loop.message ?? JSON.stringify(loop.updates), /loop|comes back|offered again/i);
  assert.ok(loop.cycles < 5, 'the loop was stopped before --max-cycles');
});

test("a launch refused by the task scheduler is reported at once with the scheduler's error, not a timeout (exit 3)", async (t) => {
  const w = await workspace(t);
  const started = Date.now();
  const r = await run(['run', 'denied01', '--lab', FAULTS, '--state', w.state, '--report', w.report]);
  assert.equal(r.code, 3, r.stderr);
  const [denied] = (await readReport(w.report)).hosts;
  assert.equal(denied!.outcome, 'access-denied', 'E_ACCESSDENIED is called access denied, not unreachable');
  assert.match(denied!.message ?? '', /refused.*0x80070005/);
  assert.doesNotMatch(denied!.message ?? '', /time(d)? ?out/i);
  assert.match(r.stdout, /denied01.*0x80070005/);
  assert.ok(Date.now() - started < 30_000, 'reported without waiting for a timeout');
});

test('SIGINT stops cleanly with exit 5; --resume finishes the run', async (t) => {
  const w = await workspace(t);
  const first = start(['run', '--lab', SMALL, '--state', w.state, '--report', w.report]);
  const launched = await first.line(/cycle 1 started/);
  assert.ok(launched);
  first.child.kill('SIGINT');
  const stopped = await first.done;
  assert.equal(stopped.code, 5, stopped.stderr);
  const cancelled = await readReport(w.report);
  assert.equal(cancelled.run.exitCode, 5);
  assert.ok(cancelled.hosts.some((h) => h.outcome === 'cancelled'));

  const resumed = await run(['run', '--resume', cancelled.run.id, '--state', w.state, '--report', w.report]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const report = await readReport(w.report);
  assert.equal(report.run.id, cancelled.run.id);
  assert.ok(report.hosts.every((h) => h.outcome === 'compliant'));
});

test('kill -9 of the connector mid-run, then --resume: a complete report and no update installed twice', async (t) => {
  const w = await workspace(t);
  const first = start(['run', '--lab', SMALL, '--state', w.state, '--log-format', 'json']);
  const line = await first.line(/"kind":"agent-event".*"phase":"install"/);
  const runId = (JSON.parse(line) as { runId: string }).runId;
  first.child.kill('SIGKILL');
  await first.done;

  const resumed = await run(['run', '--resume', runId, '--state', w.state, '--report', w.report]);
  assert.equal(resumed.code, 0, `${resumed.stdout.slice(-3000)}\n${resumed.stderr}`);
  const report = await readReport(w.report);
  assert.equal(report.hosts.length, 2);
  for (const host of report.hosts) {
    assert.equal(host.outcome, 'compliant');
    assert.equal(host.updates.filter((u) => u.result === 'installed').length, 4, host.name);
    const state = await hostState(w.dir, runId, host.name);
    const installs = state.history
      .filter((h) => h.operation === 'installation' && h.resultCode === 'succeeded')
      .map((h) => h.updateKey);
    assert.equal(new Set(installs).size, installs.length, `${host.name} installed ${installs.join(', ')}`);
  }
});

test('--offline-cab: the scan runs against a signed catalog copied onto each host and finds what an online scan finds', async (t) => {
  const w = await workspace(t);
  const cab = join(w.dir, 'wsusscn2.cab');
  const made = await run(['lab', 'catalog', SMALL, '--out', cab]);
  assert.equal(made.code, 0, made.stderr);
  const online = join(w.dir, 'online.json');
  const [offlineRun, onlineRun] = await Promise.all([
    run(['run', '--lab', SMALL, '--scan', '--offline-cab', cab, '--state', w.state, '--report', w.report]),
    run(['run', '--lab', SMALL, '--scan', '--state', join(w.dir, 'online.sqlite'), '--report', online]),
  ]);
  assert.equal(offlineRun.code, 0, offlineRun.stderr);
  assert.equal(onlineRun.code, 0, onlineRun.stderr);
  const available = (r: Report) =>
    r.hosts.map((h) => [
      h.name,
      h.updates
        .filter((u) => u.result === 'available')
        .map((u) => u.kb)
        .sort(),
    ]);
  const offlineReport = await readReport(w.report);
  assert.deepEqual(available(offlineReport), available(await readReport(online)));
  assert.ok(
    existsSync(join(w.dir, 'lab', offlineReport.run.id, 'hosts', 'web01', 'wsusscn2.cab')),
    "the cab was put on the host's own disk",
  );
});
