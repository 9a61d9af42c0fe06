/**
 * `patchline catalog` from the command line, as an administrator mistypes it: search criteria are
 * validated like `run` validates its filters (a misspelt classification, severity or product, an
 * impossible date are usage errors, not "No updates match"), and importing the catalog that is
 * already current says so instead of keeping a second copy. A signed lab catalog, the real CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SMALL, run, workspace } from './cli-helpers.ts';

test('catalog search validates its criteria; importing the current catalog again changes nothing', async (t) => {
  const w = await workspace(t);
  const cab = join(w.dir, 'wsusscn2.cab');
  const made = await run(['lab', 'catalog', SMALL, '--out', cab]);
  assert.equal(made.code, 0, made.stderr);
  const imported = await run(['catalog', 'import', cab, '--trust', `${cab}.root.pem`, '--state', w.state]);
  assert.equal(imported.code, 0, imported.stderr);

  const again = await run(['catalog', 'import', cab, '--trust', `${cab}.root.pem`, '--state', w.state]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /is already the current one/);
  const status = await run(['catalog', 'status', '--state', w.state, '--json']);
  const versions = JSON.parse(status.stdout) as { current: { id: number } | null; previous: unknown };
  assert.equal(versions.previous, null, 'no second copy: the first import is still the only one');

  const cases: [string[], RegExp][] = [
    [
      ['--classification', 'Security Update'],
      /USAGE_VALUE: --classification: "Security Update" is not a name in the current catalog\. Did you mean: .*Security Updates/,
    ],
    [['--severity', 'critcal'], /USAGE_VALUE: --severity: "critcal" is not a name.*Critical, Important, Moderate, Low/],
    [['--since', '2026-13-45'], /CATALOG_BAD_DATE: --since 2026-13-45: not a date/],
    [
      ['--product', 'Windows Server 2002'],
      /USAGE_VALUE: --product: "Windows Server 2002" is not a name in the current catalog\. Did you mean: .*Windows Server 2022/,
    ],
  ];
  for (const [extra, message] of cases) {
    const r = await run(['catalog', 'search', ...extra, '--state', w.state]);
    assert.equal(r.code, 64, `${extra.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const found = await run([
    'catalog',
    'search',
    '--classification',
    'security updates',
    '--severity',
    'critical',
    '--since',
    '2026-11-01',
    '--state',
    w.state,
    '--json',
  ]);
  assert.equal(found.code, 0, found.stderr);
  assert.deepEqual((JSON.parse(found.stdout) as { kb: string }[]).map((h) => h.kb).sort(), ['5044444', '5044445']);

  const help = await run(['catalog', 'search', '--help']);
  assert.match(help.stdout, /--limit <n>\s+at most this many results \(default: 50\)/);
});
