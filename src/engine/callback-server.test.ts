/** The callback server's contract with agents (docs/internals.md §3). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallbackServer } from './callback-server.ts';
import type { AgentEvent } from '../domain/agent-log.ts';

const ev = (seq: number): AgentEvent => ({
  seq,
  at: '2026-11-21T06:00:00Z',
  kind: 'warning',
  message: `w${seq}`,
  hresult: null,
});
const ndjson = (events: AgentEvent[]) => events.map((e) => JSON.stringify(e)).join('\n') + '\n';
const post = (url: string, token: string, body: string) =>
  fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
    body,
  });

test('200 with ackSeq, 401 on a wrong token, 410 once unregistered or closed', async () => {
  const server = await CallbackServer.start();
  try {
    const got: AgentEvent[][] = [];
    const cb = server.register(async (events) => {
      got.push([...events]);
      return Math.max(...events.map((e) => e.seq));
    });
    assert.match(cb.url, /^http:\/\/127\.0\.0\.1:\d+\/cycles\/[0-9a-f]{24}\/events$/);
    const ok = await post(cb.url, cb.token, ndjson([ev(1), ev(2)]));
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ackSeq: 2 });
    assert.deepEqual(
      got[0]?.map((e) => e.seq),
      [1, 2],
    );

    const wrong = await post(cb.url, 'not-the-token', ndjson([ev(3)]));
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    assert.equal(got.length, 1, 'nothing delivered with a wrong token');

    const bad = await post(cb.url, cb.token, 'not json\n');
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    const other = server.register(async () => 0);
    assert.notEqual(other.token, cb.token, 'a token per cycle');
    cb.unregister();
    cb.unregister();
    const gone = await post(cb.url, cb.token, ndjson([ev(3)]));
    assert.equal(gone.status, 410);
    await gone.body?.cancel();
  } finally {
    await server.close();
    await server.close();
  }
});

test('a closed server refuses connections', async () => {
  const server = await CallbackServer.start();
  const cb = server.register(async () => 1);
  await server.close();
  await assert.rejects(post(cb.url, cb.token, ndjson([ev(1)])));
});

test('close() still delivers an acknowledgement in flight (the last agent must not wait out its hand-over)', async () => {
  const server = await CallbackServer.start();
  let release: () => void = () => undefined;
  let entered: () => void = () => undefined;
  const inSink = new Promise<void>((r) => (entered = r));
  const cb = server.register(async () => {
    entered();
    await new Promise<void>((r) => (release = r));
    return 7;
  });
  const response = post(cb.url, cb.token, ndjson([ev(7)]));
  await inSink;
  const closing = server.close();
  release();
  const res = await response;
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ackSeq: 7 });
  await closing;
});
