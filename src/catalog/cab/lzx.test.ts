import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LzxDecoder, undoE8Translation } from './lzx.ts';
import { encodeLzxLiterals } from './lzx-test-encoder.ts';
import { CabError } from './errors.ts';

describe('LZX decoder', () => {
  it('decodes a multi-frame verbatim block back to its input (every window size)', () => {
    const data = randomBytes(3 * 32768 + 1234);
    for (let bits = 15; bits <= 21; bits++) {
      const decoder = new LzxDecoder(bits);
      const frames = encodeLzxLiterals(data, bits);
      const out = Buffer.concat(
        frames.map((f, i) => decoder.decodeFrame(f, i === frames.length - 1 ? data.length % 32768 : 32768)),
      );
      assert.ok(out.equals(data), `window 2^${bits}`);
    }
  });

  it('rejects window sizes outside 2^15..2^21 with CAB_UNSUPPORTED', () => {
    assert.throws(
      () => new LzxDecoder(22),
      (e: unknown) => e instanceof CabError && e.code === 'CAB_UNSUPPORTED',
    );
  });

  it('fails, and keeps failing, when a frame is cut short', () => {
    const data = randomBytes(32768 * 2);
    const frames = encodeLzxLiterals(data, 16);
    const decoder = new LzxDecoder(16);
    assert.throws(
      () => decoder.decodeFrame(frames[0]!.subarray(0, 1000), 32768),
      (e: unknown) => e instanceof CabError && e.code === 'CAB_CORRUPT',
    );
    assert.throws(() => decoder.decodeFrame(frames[1]!, 32768), CabError);
  });

  it('undoes E8 call translation inside the frame and leaves the last 10 bytes alone', () => {
    // An E8 at position 0 whose absolute target 100 becomes relative 100 - 0 = 100; at 20: 100 - 20 = 80.
    const frame = Buffer.alloc(40);
    frame[0] = 0xe8;
    frame.writeInt32LE(100, 1);
    frame[20] = 0xe8;
    frame.writeInt32LE(100, 21);
    frame[32] = 0xe8;
    frame.writeInt32LE(100, 33); // within the last 10 bytes: untouched
    undoE8Translation(frame, 0, 1000);
    assert.equal(frame.readInt32LE(1), 100);
    assert.equal(frame.readInt32LE(21), 80);
    assert.equal(frame.readInt32LE(33), 100);
  });
});
