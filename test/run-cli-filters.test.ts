/**
 * No false success from `patchline run`'s filters and names, as administrators get them wrong:
 * an empty `--kb`, a misspelt product, a list file written by Windows PowerShell 5.1, host names
 * in capitals, a filter that matches nothing on any host. Real CLI processes on small labs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SMALL, readReport, run, workspace } from './cli-helpers.ts';

describe('no false success', { concurrency: 3 }, () => {
  test('an empty --kb and an unknown --product are refused before anything starts; an empty exclude list excludes nothing', async (t) => {
    const w = await workspace(t);
    const cases: [string[], RegExp][] = [
      [['--kb', ''], /LIST_EMPTY: --kb "": the list is empty/],
      [
        ['--product', 'Windows Server 2002'],
        /USAGE_VALUE: --product: "Windows Server 2002" is not a product of the lab scenario .*Known: Windows Server 2022/,
      ],
      [['--frobnicate'], /^patchline: error USAGE: unknown option '--frobnicate'\. See `patchline run --help`\./m],
      [
        ['--report', '--state', w.state],
        /USAGE_MISSING_VALUE: --report needs a value, but the next word is the option --state/,
      ],
    ];
    for (const [extra, message] of cases) {
      const r = await run(['run', '--lab', SMALL, '--state', w.state, ...extra]);
      assert.equal(r.code, 64, `${extra.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(existsSync(w.state), false, `${extra.join(' ')} created no state`);
    }
    const empty = join(w.dir, 'blocked.txt');
    await writeFile(empty, '# nothing blocked this month\n');
    const r = await run([
      'run',
      '--lab',
      SMALL,
      '--scan',
      '--exclude-kb',
      `@${empty}`,
      '--state',
      w.state,
      '--report',
      w.report,
    ]);
    assert.equal(r.code, 0, r.stderr);
    // Everything the scan offers (the CU waits for its servicing stack), nothing excluded.
    assert.deepEqual(
      (await readReport(w.report)).hosts.map((h) =>
        h.updates
          .filter((u) => u.result === 'available')
          .map((u) => u.kb)
          .sort(),
      ),
      [
        ['2267602', '5044444'],
        ['2267602', '5044444'],
      ],
    );
  });

  test('a KB list saved by Windows PowerShell 5.1 (UTF-16 LE with BOM) is read; host names match case-insensitively and are reported as the scenario writes them', async (t) => {
    const w = await workspace(t);
    const list = join(w.dir, 'approved.txt');
    // PS 5.1: 'KB5044444','KB2267602' > approved.txt
    await writeFile(
      list,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('KB5044444\r\nKB2267602\r\n', 'utf16le')]),
    );
    const r = await run(['run', 'WEB01', '--lab', SMALL, '--kb', `@${list}`, '--state', w.state, '--report', w.report]);
    assert.equal(r.code, 0, r.stderr);
    const report = await readReport(w.report);
    assert.deepEqual(
      report.hosts.map((h) => [h.name, h.outcome]),
      [['web01', 'compliant']],
    );
    assert.deepEqual(
      report.hosts[0]!.updates.filter((u) => u.result === 'installed')
        .map((u) => u.kb)
        .sort(),
      ['2267602', '5044444'],
    );
  });

  test('a filter value that matched nothing on any host is reported loudly in the log and in the report, with the values seen', async (t) => {
    const w = await workspace(t);
    const scenario = join(w.dir, 'mixed.yaml');
    // The catalog knows Server 2019 (so the name is valid), but every host runs 2022.
    await writeFile(
      scenario,
      `timeScale: 0.02
catalog:
  - key: lcu-2022
    kb: 5044445
    title: Cumulative Update for Windows Server 2022 (KB5044445)
    classification: Security Updates
    products: [Windows Server 2022]
    released: 2026-11-10
  - key: lcu-2019
    kb: 5044446
    title: Cumulative Update for Windows Server 2019 (KB5044446)
    classification: Security Updates
    products: [Windows Server 2019]
    released: 2026-11-10
hosts:
  - name: app01
    product: Windows Server 2022
`,
    );
    const r = await run([
      'run',
      '--lab',
      scenario,
      '--scan',
      '--product',
      'Windows Server 2019',
      '--state',
      w.state,
      '--report',
      w.report,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /WARNING: --product "Windows Server 2019" matched no update found on any host; the scans found: Windows Server 2022/,
    );
    assert.match(r.stderr, /WARNING: --product "Windows Server 2019"/);
    const report = await readReport(w.report);
    assert.deepEqual(report.warnings, [
      { kind: 'filter-unmatched', option: '--product', values: ['Windows Server 2019'], seen: ['Windows Server 2022'] },
    ]);
  });
});

test('run --help lists --lab-inprocess, a --resume example with a real run id, and exit 1', async () => {
  const help = await run(['run', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--lab-inprocess\s+run the lab agents/);
  // The shape newRunId() gives: 20261121-0512-7f3a1c.
  assert.match(help.stdout, /patchline run --resume \d{8}-\d{4}-[0-9a-f]{6}\b/);
  assert.match(help.stdout, /^ {2}1 {2}node itself failed/m);
});
