/**
 * AnswerBurst: the gateway's other agent requests wait while the answers an action woke are owed,
 * and go when the last is answered — or after the cap, however long the burst takes. Timers are
 * node:test's mock timers: the cap is reached by moving the clock, not by waiting.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerBurst } from './waiters.ts';

const settledNow = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

test('requests wait while woken answers are owed, and go with the last one', async () => {
  const burst = new AnswerBurst();
  assert.equal(await settledNow(burst.settled(3_000)), true, 'nothing owed: at once');
  burst.begin(2);
  const waiting = burst.settled(3_000);
  assert.equal(await settledNow(waiting), false);
  burst.end();
  assert.equal(await settledNow(waiting), false, 'one answer still owed');
  burst.end();
  assert.equal(await settledNow(waiting), true);
  assert.equal(burst.owed, 0);
  burst.end(); // an extra end never makes the count negative
  assert.equal(burst.owed, 0);
});

test('a request waits at most the cap, however long the burst lasts', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const burst = new AnswerBurst();
    burst.begin(1);
    const waiting = burst.settled(3_000);
    mock.timers.tick(2_999);
    assert.equal(await settledNow(waiting), false);
    mock.timers.tick(1);
    assert.equal(await settledNow(waiting), true);
    assert.equal(burst.owed, 1, 'the answer is still owed; only the wait ended');
  } finally {
    mock.timers.reset();
  }
});
