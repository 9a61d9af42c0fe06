/** ManualClock: sleeps fall due only when time is moved, in time order; aborts reject at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './manual-clock.ts';

const never = new AbortController().signal;

test('sleeps resolve in time order as time is advanced, not before', async () => {
  const clock = new ManualClock(new Date('2026-11-21T06:00:00Z'));
  const woke: string[] = [];
  void clock
    .sleep(20 * 60_000, never)
    .then(() => woke.push(`reboot timeout at ${clock.now().toISOString().slice(11, 16)}`));
  void clock.sleep(5_000, never).then(() => woke.push(`probe at ${clock.now().toISOString().slice(11, 19)}`));
  await clock.advance(4_999);
  assert.deepEqual(woke, []);
  await clock.advance(1);
  assert.deepEqual(woke, ['probe at 06:00:05']);
  await clock.advance(20 * 60_000);
  assert.deepEqual(woke, ['probe at 06:00:05', 'reboot timeout at 06:20']);
  assert.equal(clock.now().toISOString(), '2026-11-21T06:20:05.000Z');
});

test('a sleep started by woken code within the advance still falls due in it', async () => {
  const clock = new ManualClock();
  let probes = 0;
  const loop = async () => {
    while (probes < 10) {
      await clock.sleep(1_000, never);
      probes++;
    }
  };
  void loop();
  await clock.advance(5_500);
  assert.equal(probes, 5);
});

test('an abort rejects the sleep with the reason and removes it', async () => {
  const clock = new ManualClock();
  const ctl = new AbortController();
  const slept = clock.sleep(1_000, ctl.signal);
  assert.equal(clock.pending, 1);
  ctl.abort(new Error('stopped'));
  await assert.rejects(slept, /stopped/);
  assert.equal(clock.pending, 0);
});

test('runUntil jumps from sleep to sleep; it says so when nothing waits on the clock', async () => {
  const clock = new ManualClock();
  let done = false;
  void clock.sleep(3_600_000, never).then(() => (done = true));
  await clock.runUntil(() => done);
  assert.equal(clock.now().getTime() - new ManualClock().now().getTime(), 3_600_000);
  await assert.rejects(
    clock.runUntil(() => false),
    /nothing is waiting on the clock/,
  );
});
