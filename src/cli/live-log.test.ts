import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunLogEvent } from '../engine/index.ts';
import { textLog, viewLine } from './live-log.ts';
import { record } from '../../test/agent-fake-provider.ts';

const LONG_TITLE =
  '2026-11 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for Windows Server 2022 for x64 (KB5044447)';
const base = { at: '2026-11-21T05:42:26.000Z', runId: 'r1' } as const;
const update = record('5044447', {
  updateId: 'u-net',
  title: LONG_TITLE,
  maxDownloadSize: 1,
  lastDeploymentChangeTime: '2026-11-10T00:00:00Z',
});

/** A terminal 70 columns wide that keeps what was written. */
function terminal() {
  let text = '';
  return { out: { columns: 70, write: (s: string) => void (text += s) }, screen: () => text };
}

/** The last drawn progress view: the lines after the last "clear" sequence. */
const lastView = (screen: string) =>
  screen
    .split('\x1b[J')
    .at(-1)!
    .split('\n')
    .filter((l) => l.startsWith('  '));

test('the live view keeps the KB and percent visible when the title is long, with the cycle number', () => {
  const line = viewLine(
    'web01',
    { cycle: 2, phase: 'installing', kb: 'KB5044447', percent: 50, detail: LONG_TITLE, done: false },
    70,
  );
  assert.equal(line.length, 70);
  assert.match(line, /^ {2}web01\s+cycle 2\s+installing\s+KB5044447 +50% 2026-11 Cumulative/);
  assert.ok(line.endsWith('…'));
});

test('a rebooting host is shown as rebooting, not unreachable; progress and cycle are shown', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const term = terminal();
  const log = textLog(term.out, { tty: true, color: false });
  const events: RunLogEvent[] = [
    { ...base, host: 'web01', kind: 'cycle-launched', cycle: 2, taskId: 't', pid: 1, bootId: 'b1' },
    {
      ...base,
      host: 'web01',
      kind: 'agent-event',
      cycle: 2,
      event: { kind: 'scan-result', pass: 1, found: [update], selected: ['u-net'], skipped: [], seq: 1, at: base.at },
    },
    {
      ...base,
      host: 'web01',
      kind: 'agent-event',
      cycle: 2,
      event: { kind: 'progress', phase: 'install', updateId: 'u-net', percent: 60, seq: 2, at: base.at },
    },
    { ...base, host: 'web02', kind: 'cycle-launched', cycle: 1, taskId: 't', pid: 2, bootId: 'b1' },
    { ...base, host: 'web02', kind: 'reboot-started', cycle: 1, by: 'agent', reason: 'updates need it' },
    { ...base, host: 'web02', kind: 'waiting-for-host', reason: 'reboot', seen: 'unreachable' },
  ] as RunLogEvent[];
  for (const e of events) log.write(e);
  t.mock.timers.tick(500);
  const view = lastView(term.screen());
  const web01 = view.find((l) => l.includes('web01'))!;
  const web02 = view.find((l) => l.includes('web02'))!;
  assert.match(web01, /cycle 2\s+installing\s+KB5044447 +60%/);
  assert.match(web02, /cycle 1\s+rebooting\s+down, waiting for it to come back/);
  assert.doesNotMatch(web02, /unreachable/);
  assert.match(view.at(-1)!, /0\/2 hosts finished/);
  log.close();
});
