import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogReader } from './log-reader.ts';

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
    assert.deepEqual((await reader.poll()).map((e) => e.seq), [1]);
    file += 'ress"}\npatchline agent: a runtime message\n{"seq":3,"kind":"progress"}\n';
    failNext = true;
    await assert.rejects(reader.poll(), /connection dropped/);
    assert.deepEqual((await reader.poll()).map((e) => e.seq), [2, 3]);
    assert.deepEqual(reader.all()?.map((e) => e.seq), [1, 2, 3]);
    assert.equal(reader.bytesRead, Buffer.byteLength(file));
    // After the first line the reads go on from where the previous complete line ended.
    assert.ok(reads.at(-1)! > 0);
  });

  it('says null when the file was never there', async () => {
    const reader = new LogReader(async () => null);
    await reader.poll();
    assert.equal(reader.all(), null);
  });
});
