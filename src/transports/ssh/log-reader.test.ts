import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogReader, LogRelay } from './log-reader.ts';
import type { AgentEvent } from '../../domain/agent-log.ts';

describe('LogReader', () => {
  it('reads complete lines only, goes on from its offset, and survives a failed read without losing or repeating an event', async () => {
    let file = '';
    let failNext = false;
    const reads: number[] = [];
    const reader = new LogReader(async (offset, max) => {
      reads.push(offset);
      if (failNext) {
        failNext = false;
        throw new Error('connection dropped');
      }
      return Buffer.from(file).subarray(offset, offset + max);
    });
    assert.deepEqual(await reader.poll(), []);
    file += '{"seq":1,"kind":"cycle-started"}\n{"seq":2,"kind":"prog';
    assert.deepEqual(
      (await reader.poll()).map((e) => e.seq),
      [1],
    );
    file += 'ress"}\npatchline agent: a runtime message\n{"seq":3,"kind":"progress"}\n';
    failNext = true;
    await assert.rejects(reader.poll(), /connection dropped/);
    assert.deepEqual(
      (await reader.poll()).map((e) => e.seq),
      [2, 3],
    );
    assert.deepEqual(
      reader.all()?.map((e) => e.seq),
      [1, 2, 3],
    );
    assert.equal(reader.bytesRead, Buffer.byteLength(file));
    // After the first line the reads go on from where the previous complete line ended.
    assert.ok(reads.at(-1)! > 0);
  });

  it('two polls at once read each event once', async () => {
    const file = '{"seq":1,"kind":"cycle-started"}\n{"seq":2,"kind":"progress"}\n';
    const reader = new LogReader(async (offset, max) => {
      await new Promise((resolve) => setImmediate(resolve));
      return Buffer.from(file).subarray(offset, offset + max);
    });
    const [a, b] = await Promise.all([reader.poll(), reader.poll()]);
    assert.deepEqual(
      [...a, ...b].map((e) => e.seq),
      [1, 2],
    );
    assert.deepEqual(
      reader.all()?.map((e) => e.seq),
      [1, 2],
    );
  });

  it('says null when the file was never there', async () => {
    const reader = new LogReader(async () => null);
    await reader.poll();
    assert.equal(reader.all(), null);
  });
});

describe('LogRelay', () => {
  it('posts every event of the log, those read before it started (the launch looking for the PID) first, each once', async () => {
    let file = '{"seq":1,"kind":"cycle-started"}\n{"seq":2,"kind":"progress"}\n';
    const reader = new LogReader(async (offset, max) => Buffer.from(file).subarray(offset, offset + max));
    // The launch's confirmation reads the log before the relay exists.
    await reader.poll();
    const posted: number[] = [];
    let finished: () => void = () => undefined;
    const sawThird = new Promise<void>((resolve) => (finished = resolve));
    const relay = new LogRelay({
      reader,
      callback: { url: 'http://127.0.0.1:1/cb', token: 't' },
      pollMs: 5,
      note: () => undefined,
      fetch: (async (_url: string, init: { body: string }) => {
        for (const line of init.body.trim().split('\n')) posted.push((JSON.parse(line) as AgentEvent).seq);
        if (posted.includes(3)) finished();
        return new Response('', { status: 200 });
      }) as unknown as typeof fetch,
    });
    file += '{"seq":3,"kind":"progress"}\n';
    await Promise.race([
      sawThird,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`event 3 not posted within 5 s; posted ${posted.join(',')}`)), 5_000),
      ),
    ]);
    relay.stop();
    assert.deepEqual(posted, [1, 2, 3]);
  });
});
