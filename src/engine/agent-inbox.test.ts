/** The agent inbox: resent and reordered batches come out once, in seq order, without gaps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentEvent } from '../domain/agent-log.ts';
import { AgentInbox } from './agent-inbox.ts';
import { ManualClock } from './manual-clock.ts';

const ev = (seq: number): AgentEvent => ({ seq, at: '2026-11-21T06:00:00.000Z', kind: 'rebooting' });

test('a batch out of order and resent: acknowledged up to the first gap; taken once, in order', () => {
  const inbox = new AgentInbox();
  assert.equal(inbox.add([ev(3), ev(1), ev(2), ev(5)], 0), 3);
  assert.equal(inbox.add([ev(3), ev(1)], 0), 3, 'a resend changes nothing');
  assert.deepEqual(
    inbox.takeReady(0).map((e) => e.seq),
    [1, 2, 3],
  );
  assert.deepEqual(
    inbox.takeReady(3).map((e) => e.seq),
    [],
    '5 waits for 4',
  );
  inbox.add([ev(4)], 3);
  assert.deepEqual(
    inbox.takeReady(3).map((e) => e.seq),
    [4, 5],
  );
});

test('events at or below the applied seq are dropped', () => {
  const inbox = new AgentInbox();
  inbox.add([ev(1), ev(2), ev(3)], 0);
  assert.deepEqual(
    inbox.takeReady(2).map((e) => e.seq),
    [3],
  );
});

test("a stopped agent's events are kept apart and drained with what was not applied", () => {
  const inbox = new AgentInbox();
  inbox.add([ev(2)], 0);
  inbox.keepLate([ev(1), ev(3)], 0);
  assert.deepEqual(
    inbox
      .drainLeftovers()
      .map((e) => e.seq)
      .sort(),
    [1, 2, 3],
  );
  assert.deepEqual(inbox.drainLeftovers(), []);
});

test('a parked POST is answered as soon as its events are applied, or after the bound on the clock', async () => {
  const clock = new ManualClock();
  const inbox = new AgentInbox();
  let applied = 0;
  let answered = 0;
  void inbox.waitUntil(() => applied >= 3, clock, 10_000).then(() => answered++);
  await clock.advance(0);
  assert.equal(answered, 0);
  applied = 3;
  inbox.notify();
  await clock.advance(0);
  assert.equal(answered, 1);
  void inbox.waitUntil(() => false, clock, 10_000).then(() => answered++);
  await clock.advance(9_999);
  assert.equal(answered, 1);
  await clock.advance(1);
  assert.equal(answered, 2, 'the bound ends the wait');
  inbox.releaseAll();
  await inbox.waitUntil(() => false, clock, 10_000);
});
