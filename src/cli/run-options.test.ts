import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseRunOptions, type RawRunOptions } from './run-options.ts';
import { PatchlineError } from '../domain/errors.ts';

const files: Record<string, string> = {
  'kbs.txt': '# pilot KBs\nKB5044444\n5043050  # the .NET one\n\n',
  'bad.txt': 'KB5044444\nnot-a-kb\n',
  'empty.txt': '# nothing\n',
};
const readText = (f: string): string => {
  const text = files[f];
  if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  return text;
};
const parse = (raw: RawRunOptions, targets: string[] = []) => parseRunOptions(targets, { lab: 'lab.yaml', ...raw }, readText);
const usage = (fn: () => unknown, code: string, text: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof PatchlineError && e.code === code && e.exitCode === 64 && text.test(e.message));

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
  usage(() => parse({ resume: 'r-1234', kb: '5044444' }), 'RESUME_CONFLICT', /remove .*--kb/);
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
