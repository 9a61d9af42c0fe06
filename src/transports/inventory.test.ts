import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, parseInventory, parseTarget, resolveInventoryTargets } from './inventory.ts';
import { PatchlineError } from '../domain/errors.ts';

const SERVERS = `defaults:
  user: patchline
  keyFile: ~/.ssh/id_ed25519
hosts:
  web01: { address: 10.0.0.11 }
  web02:
    address: 10.0.0.12
    port: 2222
  SQL01:
    address: sql01.corp.example
    user: dbadmin
    passwordEnv: SQL01_PASSWORD
  sql02: { passwordFile: secrets/sql02.txt }
groups:
  web: [web01, web02]
  sql: [sql01, sql02]
  night: [web, sql, web01]
`;

const inv = parseInventory(SERVERS, 'servers.yaml', '/etc/patchline');

test('hosts take their fields, the defaults, and relative/home paths resolved', () => {
  assert.deepEqual(inv.hosts.get('web01'), {
    name: 'web01',
    address: '10.0.0.11',
    port: 22,
    user: 'patchline',
    auth: { kind: 'key', keyFile: join(homedir(), '.ssh/id_ed25519') },
  });
  assert.equal(inv.hosts.get('web02')?.port, 2222);
  assert.deepEqual(inv.hosts.get('sql01')?.auth, { kind: 'passwordEnv', variable: 'SQL01_PASSWORD' });
  assert.equal(inv.hosts.get('sql01')?.user, 'dbadmin');
  assert.deepEqual(inv.hosts.get('sql02'), {
    name: 'sql02',
    address: 'sql02',
    port: 22,
    user: 'patchline',
    auth: { kind: 'passwordFile', path: '/etc/patchline/secrets/sql02.txt' },
  });
});

test('targets: hosts, groups (nested, case-insensitive), all, user@host:port — each host once, in order', () => {
  const names = (targets: string[]): string[] =>
    resolveInventoryTargets(inv, targets).map((h) => `${h.user}@${h.name}:${h.port}`);
  assert.deepEqual(names(['sql']), ['dbadmin@SQL01:22', 'patchline@sql02:22']);
  assert.deepEqual(names(['night']), [
    'patchline@web01:22',
    'patchline@web02:2222',
    'dbadmin@SQL01:22',
    'patchline@sql02:22',
  ]);
  assert.deepEqual(names(['ALL']).length, 4);
  assert.deepEqual(names(['sql01', 'web']), ['dbadmin@SQL01:22', 'patchline@web01:22', 'patchline@web02:2222']);
  assert.deepEqual(names(['admin@web01:2200']), ['admin@web01:2200'], 'user@ and :port override the inventory');
  assert.deepEqual(names(['ops@new01']), ['ops@new01:22'], 'a host outside the inventory, with the defaults');
  assert.deepEqual(
    resolveInventoryTargets(null, ['ops@[fe80::1]:22']).map((h) => [h.address, h.port, h.auth.kind]),
    [['fe80::1', 22, 'agent']],
  );
});

test('target errors are usage errors with stable codes', () => {
  const table: ReadonlyArray<readonly [string[], string, RegExp]> = [
    [
      ['web03'],
      'INVENTORY_UNKNOWN_TARGET',
      /"web03" is neither a host nor a group of servers\.yaml \(hosts: web01, web02, SQL01, sql02; groups: all, web, sql, night\)/,
    ],
    [['web01', 'WEB01'], 'USAGE_TARGET', /named twice/],
    [['a@b@c'], 'USAGE_TARGET', /not a target/],
    [['web01:99999'], 'USAGE_TARGET', /not a target/],
    [['web 01'], 'USAGE_TARGET', /not a target/],
  ];
  for (const [targets, code, message] of table) {
    assert.throws(
      () => resolveInventoryTargets(inv, targets),
      (e: unknown) => e instanceof PatchlineError && e.code === code && e.exitCode === 64 && message.test(e.message),
      targets.join(' '),
    );
  }
  assert.deepEqual(parseTarget('web01'), { user: null, host: 'web01', port: null });
});

test('inventory errors name the file, the line and the field', () => {
  const table: ReadonlyArray<readonly [string, RegExp]> = [
    [
      'hosts:\n  web01:\n    address: 10.0.0.1\n    password: hunter2\n',
      /^x\.yaml:4: hosts\.web01\.password: passwords are not kept in the inventory: name an environment variable \(passwordEnv\) or a file \(passwordFile\)/,
    ],
    ['hosts:\n  web01: { port: 70000 }\n', /^x\.yaml:2: hosts\.web01\.port: must be a port number/],
    [
      'hosts:\n  web01: {}\ngroups:\n  sql: [web01, sql09]\n',
      /^x\.yaml:4: groups\.sql\[1\]: "sql09" is neither a host nor a group/,
    ],
    [
      'hosts:\n  web01: {}\ngroups:\n  a: [b]\n  b: [a]\n',
      /^x\.yaml:4: groups\.a: groups include each other in a loop: a → b → a/,
    ],
    [
      'hosts:\n  web01: { keyFile: k, passwordEnv: P }\n',
      /^x\.yaml:2: hosts\.web01: name one of keyFile, passwordEnv, passwordFile/,
    ],
    [
      'hosts:\n  web01: { passwordEnv: "not a var" }\n',
      /hosts\.web01\.passwordEnv: must be an environment variable name/,
    ],
    ['hosts:\n  web01: {}\n  WEB01: {}\n', /^x\.yaml:3: hosts\.WEB01: names the same host as web01/],
    ['hosts:\n  web01: {}\ngroups:\n  all: [web01]\n', /groups\.all: `all` is every host/],
    ['hosts:\n  web01: { adress: x }\n', /hosts\.web01\.adress: unknown field/],
    ['hosts: [web01]\n', /^x\.yaml:1: hosts: is required: a mapping/],
    ['hosts:\n  web01: {\n', /^x\.yaml:\d+: not valid YAML/],
    ['hosts:\n  web01: {}\n  web01: {}\n', /^x\.yaml:3: not valid YAML/],
  ];
  for (const [text, message] of table) {
    assert.throws(
      () => parseInventory(text, 'x.yaml'),
      (e: unknown) =>
        e instanceof PatchlineError && e.code === 'INVENTORY_INVALID' && e.exitCode === 64 && message.test(e.message),
      `${text} → ${(() => {
        try {
          parseInventory(text, 'x.yaml');
          return 'no error';
        } catch (e) {
          return (e as Error).message;
        }
      })()}`,
    );
  }
});

test('loadInventory reads the file and refuses a missing one with its own code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pl-inv-'));
  writeFileSync(join(dir, 'servers.yaml'), SERVERS);
  const loaded = await loadInventory(join(dir, 'servers.yaml'));
  assert.deepEqual(loaded.hosts.get('sql02')?.auth, { kind: 'passwordFile', path: join(dir, 'secrets/sql02.txt') });
  await assert.rejects(
    loadInventory(join(dir, 'missing.yaml')),
    (e: unknown) => e instanceof PatchlineError && e.code === 'INVENTORY_UNREADABLE' && e.exitCode === 64,
  );
});
