import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseRunOptions, type RawRunOptions } from './run-options.ts';
import { resolve } from 'node:path';
import { PatchlineError } from '../domain/errors.ts';
import { resumeConflicts } from './run-resume.ts';

const files: Record<string, string> = {
  'kbs.txt': '# pilot KBs\nKB5044444\n5043050  # the .NET one\n\n',
  'bad.txt': 'KB5044444\nnot-a-kb\n',
  'empty.txt': '# nothing\n',
};
/** As Windows PowerShell 5.1's `'KB5044444','KB5043050' > kbs.txt` writes it: UTF-16 LE with a BOM, CRLF. */
const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('KB5044444\r\nKB5043050\r\n', 'utf16le')]);
const bytes: Record<string, Uint8Array> = {
  'ps51.txt': utf16,
  'bom8.txt': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('KB5044444\r\n')]),
  'ansi.txt': Buffer.from([0x4b, 0x42, 0x35, 0x30, 0x34, 0x34, 0x34, 0x34, 0x34, 0x20, 0xe9, 0x0d, 0x0a]),
  'nobom16.txt': Buffer.from('KB5044444\r\n', 'utf16le'),
};
const readText = (f: string): string | Uint8Array => {
  if (bytes[f]) return bytes[f]!;
  const text = files[f];
  if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  return text;
};
const parse = (raw: RawRunOptions, targets: string[] = []) =>
  parseRunOptions(targets, { lab: 'lab.yaml', ...raw }, readText);
const usage = (fn: () => unknown, code: string, text: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof PatchlineError && e.code === code && e.exitCode === 64 && text.test(e.message),
  );

test('defaults are install, reboot if-required, parallel 10, 5 cycles, 1 retry, 20m reboot timeout', () => {
  const p = parse({});
  assert.equal(p.kind, 'new');
  if (p.kind !== 'new') return;
  assert.equal(p.config.mode, 'install');
  assert.equal(p.config.reboot, 'if-required');
  assert.equal(p.config.parallel, 10);
  assert.equal(p.config.maxCycles, 5);
  assert.equal(p.config.retries, 1);
  assert.equal(p.config.rebootTimeoutMs, 20 * 60_000);
  assert.equal(p.config.deadlineMs, null);
});

test('KB lists come from the command line or an OpCon-style @FILE, KB prefix optional', () => {
  const p = parse({ kb: '@kbs.txt', excludeKb: 'KB5040000, 5041111' });
  assert.ok(p.kind === 'new');
  assert.deepEqual(p.config.filters.kbs, ['5044444', '5043050']);
  assert.deepEqual(p.config.filters.excludeKbs, ['5040000', '5041111']);
});

test('bad input is a usage error (exit 64) that names the problem', () => {
  usage(() => parse({ kb: '@missing.txt' }), 'LIST_UNREADABLE', /missing\.txt.*ENOENT/);
  usage(() => parse({ kb: '@bad.txt' }), 'LIST_INVALID', /line 2: "not-a-kb"/);
  usage(() => parse({ kb: '@empty.txt' }), 'LIST_EMPTY', /names nothing/);
  usage(() => parse({ scan: true, install: true }), 'USAGE_MODE', /--scan and --install/);
  usage(() => parse({ reboot: 'sometimes' }), 'USAGE_VALUE', /never, if-required, always/);
  usage(() => parse({ classification: 'Security Update' }), 'USAGE_VALUE', /"Security Update" is not a known name/);
  usage(() => parse({ rebootTimeout: '20' }), 'USAGE_DURATION', /with a unit/);
  usage(() => parse({ parallel: '0' }), 'USAGE_VALUE', /--parallel 0/);
  usage(() => parse({ serial: true, parallel: '3' }), 'USAGE_PARALLEL', /contradict/);
  usage(() => parse({ title: '(' }), 'USAGE_VALUE', /regular expression/);
  usage(() => parse({}, ['web01', 'WEB01']), 'USAGE_TARGET', /named twice/);
  usage(() => parseRunOptions([], {}, readText), 'TRANSPORT_UNAVAILABLE', /--lab SCENARIO/);
});

test('classification and severity names are matched case-insensitively and normalised', () => {
  const p = parse({ classification: 'security updates,Critical Updates', severity: 'critical,none' });
  assert.ok(p.kind === 'new');
  assert.deepEqual(p.config.filters.classifications, ['Security Updates', 'Critical Updates']);
  assert.deepEqual(p.config.filters.severities, ['Critical', 'none']);
});

test('--serial means one host at a time; --resume keeps the saved options', () => {
  const p = parse({ serial: true });
  assert.ok(p.kind === 'new');
  assert.equal(p.config.parallel, 1);
  const r = parseRunOptions([], { resume: 'r-20261121-abcd', report: 'out.json' }, readText);
  assert.deepEqual(r.kind === 'resume' && [r.runId, r.output.reportFile], ['r-20261121-abcd', 'out.json']);
});

test('durations add up their parts', () => {
  assert.equal(parseDuration('--x', '1h30m'), 90 * 60_000);
  assert.equal(parseDuration('--x', '90s'), 90_000);
  assert.equal(parseDuration('--x', '2d'), 2 * 86_400_000);
});

test('no false success: an empty include filter is a usage error, an empty exclude list excludes nothing', () => {
  usage(() => parse({ kb: '' }), 'LIST_EMPTY', /--kb "": the list is empty/);
  usage(() => parse({ updateId: ' , ' }), 'LIST_EMPTY', /--update-id/);
  usage(() => parse({ product: '' }), 'LIST_EMPTY', /--product is empty/);
  usage(() => parse({ classification: '' }), 'USAGE_VALUE', /--classification is empty/);
  usage(() => parse({ title: '' }), 'LIST_EMPTY', /--title is empty/);
  const p = parse({ excludeKb: '@empty.txt', excludeUpdateId: '' });
  assert.ok(p.kind === 'new');
  assert.deepEqual([p.config.filters.excludeKbs, p.config.filters.excludeUpdateIds], [[], []]);
});

test('KB lists written by Windows PowerShell 5.1 (UTF-16 LE + BOM) or with a UTF-8 BOM are read; other encodings are named', () => {
  const p = parse({ kb: '@ps51.txt', excludeKb: '@bom8.txt' });
  assert.ok(p.kind === 'new');
  assert.deepEqual(p.config.filters.kbs, ['5044444', '5043050']);
  assert.deepEqual(p.config.filters.excludeKbs, ['5044444']);
  usage(() => parse({ kb: '@ansi.txt' }), 'LIST_ENCODING', /ansi\.txt is neither UTF-8.*Windows-1252/);
  usage(() => parse({ kb: '@nobom16.txt' }), 'LIST_ENCODING', /UTF-16 LE without a byte-order mark/);
});

test('a forgotten option value is named, not blamed on the next word', () => {
  usage(
    () => parse({ report: '--state' }, ['state.sqlite']),
    'USAGE_MISSING_VALUE',
    /--report needs a value, but the next word is the option --state/,
  );
});

test('--resume with the options the run was started with is accepted; different values are refused by name', () => {
  const r = parse({ resume: '20261121-0512-7f3a1c', kb: '5044444', maxCycles: '3' }, ['WEB01']);
  assert.ok(r.kind === 'resume');
  assert.deepEqual(r.given, ['targets', 'lab', 'kb', 'maxCycles']);
  const saved = {
    targets: ['web01'],
    mode: 'install',
    reboot: 'if-required',
    filters: { kbs: ['5044444'] },
    maxCycles: 5,
    retries: 1,
    rebootTimeoutMs: 1_200_000,
    deadlineAt: null,
    parallel: 10,
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 1800,
    logHandoverTimeoutSeconds: 600,
    meta: { transportConfig: { kind: 'lab', scenario: resolve('lab.yaml'), dir: '/tmp/x', inProcess: false } },
  } as const;
  assert.deepEqual(resumeConflicts(r.given, r.config, saved), [{ option: '--max-cycles', given: '3', saved: '5' }]);
  const same = parse({ resume: '20261121-0512-7f3a1c', kb: 'KB5044444', maxCycles: '5', reboot: 'if-required' }, [
    'web01',
  ]);
  assert.ok(same.kind === 'resume');
  assert.deepEqual(resumeConflicts(same.given, same.config, saved), []);
});
