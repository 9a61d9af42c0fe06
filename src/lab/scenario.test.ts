import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchlineError } from '../domain/errors.ts';
import { expandHostPattern } from './host-range.ts';
import { nameUuid } from './name-uuid.ts';
import { loadScenario, parseScenario } from './scenario.ts';
import { toUpdateRecord } from './update-record.ts';

const CATALOG = `catalog:
  - key: ssu
    kb: 5044444
    title: SSU
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    released: 2026-11-11
  - key: lcu
    kb: KB5044445
    title: CU
    classification: Security Updates
    products: [Windows Server 2022]
    reboot: always
    released: 2026-11-11
    requires: [ssu]
`;

const valid = `timeScale: 0.05
${CATALOG}hosts:
  - name: web{01..03}
    product: Windows Server 2022
    installed: [ssu]
  - name: sql{8..10}
    product: Windows Server 2022
    faults:
      - { update: lcu, failTimes: 2, hresult: "0x80242016" }
      - { update: ssu, failAlways: true, hresult: 0x800F0922 }
      - { neverReturnAfterReboot: 2 }
      - { pendingRebootAtStart: true }
      - { installerBusySeconds: 30 }
      - { update: lcu, reappearsAfterInstall: true }
      - { launchFails: "0x80070005" }
`;

function errorOf(text: string): PatchlineError {
  try {
    parseScenario(text, 'lab.yaml');
  } catch (error) {
    assert.ok(error instanceof PatchlineError, `expected a PatchlineError, got ${String(error)}`);
    assert.equal(error.code, 'SCENARIO_INVALID');
    assert.equal(error.exitCode, 64);
    return error;
  }
  assert.fail('expected the scenario to be rejected');
}

describe('parseScenario', () => {
  it('reads a valid scenario with defaults, ranges and every fault kind', () => {
    const s = parseScenario(valid, 'lab.yaml');
    assert.equal(s.timeScale, 0.05);
    assert.equal(s.payloadScale, 0.05);
    assert.deepEqual(
      s.hosts.map((h) => h.name),
      ['web01', 'web02', 'web03', 'sql8', 'sql9', 'sql10'],
    );
    const ssu = s.byKey.get('ssu');
    const lcu = s.byKey.get('lcu');
    assert.ok(ssu && lcu);
    assert.equal(ssu.reboot, 'never');
    assert.equal(ssu.impact, 'normal');
    assert.equal(ssu.installSeconds, 10);
    assert.equal(ssu.sizeMB, 1);
    assert.equal(ssu.optional, false);
    assert.equal(ssu.type, 'software');
    assert.equal(ssu.eula, false);
    assert.equal(ssu.released, '2026-11-11T00:00:00.000Z');
    assert.equal(lcu.kb, '5044445');
    assert.equal(lcu.severity, null);
    assert.equal(s.hostByName.get('web02')?.rebootSeconds, 60);
    const faults = s.hostByName.get('sql9')?.faults;
    assert.ok(faults);
    assert.deepEqual(faults.failures.get('lcu'), { failTimes: 2, hresult: '0x80242016' });
    assert.deepEqual(faults.failures.get('ssu'), { failTimes: 'always', hresult: '0x800F0922' });
    assert.equal(faults.neverReturnAfterReboot, 2);
    assert.equal(faults.pendingRebootAtStart, true);
    assert.equal(faults.installerBusySeconds, 30);
    assert.ok(faults.reappearsAfterInstall.has('lcu'));
    assert.equal(faults.launchFails, '0x80070005');
  });

  it('derives stable name-based UpdateIDs unless an id is given', () => {
    const a = parseScenario(valid, 'a.yaml');
    const b = parseScenario(valid, 'b.yaml');
    assert.equal(a.byKey.get('ssu')?.updateId, b.byKey.get('ssu')?.updateId);
    assert.match(
      a.byKey.get('ssu')?.updateId ?? '',
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.notEqual(a.byKey.get('ssu')?.updateId, a.byKey.get('lcu')?.updateId);
    const withId = parseScenario(
      valid.replace('  - key: ssu\n', '  - key: ssu\n    id: "{3F6E1B2A-0C4D-4E5F-8A9B-0C1D2E3F4A5B}"\n'),
      'c.yaml',
    );
    assert.equal(withId.byKey.get('ssu')?.updateId, '3f6e1b2a-0c4d-4e5f-8a9b-0c1d2e3f4a5b');
    assert.ok(withId.byId.has('3f6e1b2a-0c4d-4e5f-8a9b-0c1d2e3f4a5b'));
  });

  it('matches the RFC 9562 UUIDv5 test vector for the DNS namespace', () => {
    assert.equal(
      nameUuid('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('reads JSON too', () => {
    const json = JSON.stringify({
      catalog: [
        {
          key: 'u1',
          title: 'U1',
          classification: 'Updates',
          products: ['Windows Server 2019'],
          released: '2026-10-01',
        },
      ],
      hosts: [{ name: 'h1', product: 'Windows Server 2019' }],
    });
    const s = parseScenario(json, 'lab.json');
    assert.equal(s.timeScale, 1);
    assert.equal(s.hosts[0]?.name, 'h1');
  });

  const cases: { name: string; text: string; message: RegExp }[] = [
    {
      name: 'unknown top-level key',
      text: `${CATALOG}hosts: [{ name: a, product: P }]\ntimescale: 2\n`,
      message: /^lab\.yaml:\d+: timescale: unknown field/,
    },
    {
      name: 'unknown catalog field',
      text: valid.replace('    severity: Critical\n', '    severity: Critical\n    colour: red\n'),
      message: /^lab\.yaml:8: catalog\[0\]\.colour: unknown field/,
    },
    {
      name: 'bad hresult, with line and path',
      text: valid.replace('"0x80242016"', '"80242016"'),
      message: /^lab\.yaml:25: hosts\[1\]\.faults\[0\]\.hresult: must look like 0x80242016$/,
    },
    {
      name: 'unknown key in requires',
      text: valid.replace('requires: [ssu]', 'requires: [ssu, nope]'),
      message: /catalog\[1\]\.requires\[1\]: unknown update key "nope"/,
    },
    {
      name: 'unknown key in supersedes',
      text: valid.replace('requires: [ssu]', 'supersedes: [gone]'),
      message: /catalog\[1\]\.supersedes\[0\]: unknown update key "gone"/,
    },
    {
      name: 'unknown key in installed',
      text: valid.replace('installed: [ssu]', 'installed: [ssu-old]'),
      message: /hosts\[0\]\.installed\[0\]: unknown update key "ssu-old"/,
    },
    {
      name: 'unknown key in a fault',
      text: valid.replace('{ update: lcu, failTimes', '{ update: lcux, failTimes'),
      message: /hosts\[1\]\.faults\[0\]\.update: unknown update key "lcux"/,
    },
    {
      name: 'unknown fault shape',
      text: valid.replace('{ neverReturnAfterReboot: 2 }', '{ explodes: true }'),
      message: /hosts\[1\]\.faults\[2\]: must be one of/,
    },
    {
      name: 'extra field in a fault',
      text: valid.replace('{ neverReturnAfterReboot: 2 }', '{ neverReturnAfterReboot: 2, hresult: "0x80070005" }'),
      message: /hosts\[1\]\.faults\[2\]\.hresult: unknown field/,
    },
    {
      name: 'duplicate host, plain name',
      text: valid.replace('sql{8..10}', 'WEB03'),
      message: /hosts\[1\]\.name: host name "WEB03" is already used by hosts\[0\]/,
    },
    {
      name: 'duplicate host, padded range',
      text: valid.replace('sql{8..10}', 'web{02..04}'),
      message: /^lab\.yaml:\d+: hosts\[1\]\.name: host name "web02" is already used by hosts\[0\]/,
    },
    {
      name: 'range counting down',
      text: valid.replace('web{01..03}', 'web{03..01}'),
      message: /hosts\[0\]\.name: range \{03\.\.01\} counts down/,
    },
    {
      name: 'malformed range',
      text: valid.replace('web{01..03}', 'web{01..}'),
      message: /hosts\[0\]\.name: bad range/,
    },
    {
      name: 'cycle in requires',
      text: valid.replace(
        '    released: 2026-11-11\n  - key: lcu',
        '    released: 2026-11-11\n    requires: [lcu]\n  - key: lcu',
      ),
      message: /prerequisites form a cycle: ssu → lcu → ssu/,
    },
    {
      name: 'bad enum',
      text: valid.replace('reboot: always', 'reboot: sometimes'),
      message: /catalog\[1\]\.reboot: must be one of never \| always \| canRequest/,
    },
    {
      name: 'bad severity',
      text: valid.replace('severity: Critical', 'severity: Urgent'),
      message: /catalog\[0\]\.severity: must be one of Critical \| Important \| Moderate \| Low \| none/,
    },
    {
      name: 'missing product',
      text: valid.replace('    product: Windows Server 2022\n    installed', '    installed'),
      message: /hosts\[0\]\.product: is required/,
    },
    {
      name: 'bad date',
      text: valid.replace('released: 2026-11-11\n  - key: lcu', 'released: next tuesday\n  - key: lcu'),
      message: /catalog\[0\]\.released: must be a date/,
    },
    {
      name: 'negative timeScale',
      text: `timeScale: -1\n${CATALOG}hosts: [{ name: a, product: P }]\n`,
      message: /^lab\.yaml:1: timeScale: must be greater than 0/,
    },
    {
      name: 'duplicate catalog key',
      text: valid.replace('  - key: lcu', '  - key: ssu'),
      message: /catalog\[1\]\.key: duplicate key "ssu"/,
    },
    {
      name: 'YAML syntax error, with line',
      text: 'catalog:\n  - key: [unclosed\nhosts: []\n',
      message: /^lab\.yaml:\d+: not valid YAML\/JSON/,
    },
    {
      name: 'failAlways false',
      text: valid.replace('failAlways: true', 'failAlways: false'),
      message: /hosts\[1\]\.faults\[1\]\.failAlways: must be true/,
    },
  ];
  for (const c of cases) {
    it(`rejects: ${c.name}`, () => {
      assert.match(errorOf(c.text).message, c.message);
    });
  }
});

describe('expandHostPattern', () => {
  const table: [string, string[] | RegExp][] = [
    ['web01', ['web01']],
    ['web{01..03}', ['web01', 'web02', 'web03']],
    ['web{8..10}', ['web8', 'web9', 'web10']],
    ['web{08..10}', ['web08', 'web09', 'web10']],
    ['r{1..2}-w{1..2}', ['r1-w1', 'r1-w2', 'r2-w1', 'r2-w2']],
    ['web{1..1}x', ['web1x']],
    ['web{2..1}', /counts down/],
    ['web{a..b}', /bad range/],
    ['web{1..100000}', /more than/],
    ['we b', /not a valid host name/],
  ];
  for (const [pattern, expected] of table) {
    it(pattern, () => {
      const r = expandHostPattern(pattern);
      if (Array.isArray(expected)) assert.deepEqual(r, { ok: true, names: expected });
      else {
        assert.equal(r.ok, false);
        if (!r.ok) assert.match(r.message, expected);
      }
    });
  }
});

describe('loadScenario', () => {
  it('reads a file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-scenario-'));
    try {
      const good = join(dir, 'good.yaml');
      await writeFile(good, valid);
      assert.equal((await loadScenario(good)).hosts.length, 6);
      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, valid.replace('"0x80070005"', 'nope'));
      await assert.rejects(
        loadScenario(bad),
        (e: PatchlineError) =>
          e.code === 'SCENARIO_INVALID' &&
          e.message.startsWith(`${bad}:`) &&
          /launchFails: must look like/.test(e.message),
      );
      await assert.rejects(
        loadScenario(join(dir, 'missing.yaml')),
        (e: PatchlineError) => e.code === 'SCENARIO_INVALID' && /cannot read scenario file/.test(e.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('toUpdateRecord', () => {
  it('maps an entry to the protocol record with categories and supersedence ids', () => {
    const s = parseScenario(valid.replace('requires: [ssu]', 'supersedes: [ssu]'), 'lab.yaml');
    const lcu = s.byKey.get('lcu');
    assert.ok(lcu);
    const r = toUpdateRecord(
      lcu,
      { isDownloaded: true, isHidden: false, eulaAccepted: true },
      { size: 4096, downloadUrls: ['http://x/y'] },
      s.byKey,
    );
    assert.deepEqual(r.kbs, ['5044445']);
    assert.equal(r.rebootBehavior, 'always');
    assert.equal(r.maxDownloadSize, 4096);
    assert.deepEqual(r.supersededUpdateIds, [s.byKey.get('ssu')?.updateId]);
    assert.deepEqual(
      r.categories.map((c) => c.type),
      ['UpdateClassification', 'Product', 'Company', 'ProductFamily'],
    );
    assert.equal(r.categories[0]?.id, '0fa1201d-4330-4fa8-8ae9-b877473b6441');
    assert.equal(r.categories.find((c) => c.type === 'Company')?.name, 'Microsoft Corporation');
    assert.equal(r.supportUrl, 'https://support.microsoft.com/help/5044445');
  });
});

describe('examples/lab', () => {
  it('every shipped scenario loads', async () => {
    const dir = new URL('../../examples/lab/', import.meta.url);
    const files = (await readdir(dir)).filter((f) => /\.(ya?ml|json)$/.test(f));
    assert.ok(files.includes('patch-night.yaml'));
    for (const file of files) {
      const s = await loadScenario(new URL(file, dir).pathname);
      assert.ok(s.hosts.length > 0, file);
    }
    const night = await loadScenario(new URL('patch-night.yaml', dir).pathname);
    assert.equal(night.timeScale, 0.05);
    assert.ok(night.hosts.length >= 8 && night.hosts.length <= 12);
    assert.deepEqual([...new Set(night.hosts.map((h) => h.product))].sort(), [
      'Windows Server 2019',
      'Windows Server 2022',
    ]);
    assert.equal((await loadScenario(new URL('fleet-500.yaml', dir).pathname)).hosts.length, 500);
  });
});
