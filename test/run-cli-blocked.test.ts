/**
 * An update Windows Update never offered because its prerequisite failed is still in the report,
 * as `blocked` with the reason (a lab run: the scenario knows the prerequisites). Real CLI process
 * on the small lab scenario with its servicing stack update failing on every attempt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SMALL, readReport, run, workspace } from './cli-helpers.ts';

test('a failed prerequisite: the updates behind it are reported blocked with the reason, those a filter left out are not', async (t) => {
  const w = await workspace(t);
  const scenario = join(w.dir, 'ssu-fails.yaml');
  const hosts =
    '\nhosts:\n  - name: web01\n    product: Windows Server 2022\n    faults:\n      - { update: ssu-2026-11, failAlways: true, hresult: "0x80073712" }\n';
  const small = await readFile(SMALL, 'utf8');
  await writeFile(scenario, small.slice(0, small.indexOf('\nhosts:')) + hosts);

  const r = await run(['run', '--lab', scenario, '--state', w.state, '--report', w.report]);
  assert.equal(r.code, 2, r.stderr);
  const report = await readReport(w.report);
  const byKb = new Map(report.hosts[0]!.updates.map((u) => [u.kb, u]));
  assert.equal(byKb.get('5044444')?.result, 'failed');
  assert.equal(byKb.get('2267602')?.result, 'installed');
  assert.equal(byKb.get('5044445')?.result, 'blocked', 'the CU, never offered without its SSU');
  assert.match(byKb.get('5044445')!.message!, /requires KB5044444, which failed/);
  assert.equal(byKb.get('5044447')?.result, 'blocked', '.NET, behind the CU');
  assert.match(byKb.get('5044447')!.message!, /requires KB5044445, which is blocked/);

  const only = await run([
    'run',
    '--lab',
    scenario,
    '--state',
    w.state,
    '--report',
    w.report,
    '--kb',
    '5044444,2267602',
  ]);
  assert.equal(only.code, 2, only.stderr);
  const filtered = await readReport(w.report);
  assert.deepEqual(
    filtered.hosts[0]!.updates.filter((u) => u.result === 'blocked'),
    [],
    'updates the filters left out are not reported blocked',
  );
});
