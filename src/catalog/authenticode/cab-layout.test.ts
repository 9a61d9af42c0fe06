/**
 * Header rewriting and signature location on hand-built cabinet headers, including shapes the
 * shared test vectors lack (a cabinet that names the next cabinet of its set, odd reserves).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CAB_FLAGS,
  locateSignature,
  planSigning,
  recordSignature,
  RESERVE_INSERT_BYTES,
  signedDigestRanges,
} from './cab-layout.ts';

/** A cabinet header (no reserve) naming the next cabinet, with folders at the given data offsets. */
function header(folderOffsets: readonly number[], bodyBytes: number): Buffer {
  const names = Buffer.from('next.cab\0disk2\0', 'latin1');
  const fixed = Buffer.alloc(36);
  fixed.write('MSCF', 0, 'latin1');
  const coffFiles = 36 + names.length + 8 * folderOffsets.length;
  fixed.writeUInt32LE(coffFiles + bodyBytes, 8); // cbCabinet
  fixed.writeUInt32LE(coffFiles, 16);
  fixed[24] = 3;
  fixed[25] = 1;
  fixed.writeUInt16LE(folderOffsets.length, 26);
  fixed.writeUInt16LE(1, 28);
  fixed.writeUInt16LE(CAB_FLAGS.nextCabinet, 30);
  fixed.writeUInt16LE(0x1234, 32);
  const folders = folderOffsets.map((off, i) => {
    const f = Buffer.alloc(8);
    f.writeUInt32LE(off, 0);
    f.writeUInt16LE(i + 1, 4); // cCFData
    f.writeUInt16LE(1, 6); // MSZIP
    return f;
  });
  return Buffer.concat([fixed, names, ...folders]);
}

describe('planSigning', () => {
  it('inserts the 20-byte reserve and shifts cbCabinet, coffFiles and every folder offset by 24', () => {
    const head = header([100, 5000], 9000);
    const size = head.readUInt32LE(8);
    const result = planSigning(head, size);
    assert.ok(result.ok);
    const { plan } = result;
    const out = plan.head;
    assert.equal(out.readUInt16LE(30), CAB_FLAGS.nextCabinet | CAB_FLAGS.reservePresent);
    assert.equal(out.readUInt32LE(8), size + RESERVE_INSERT_BYTES);
    assert.equal(out.readUInt32LE(16), head.readUInt32LE(16) + RESERVE_INSERT_BYTES);
    assert.equal(out.readUInt16LE(36), 20);
    assert.equal(out.toString('latin1', 60, 75), 'next.cab\0disk2\0');
    assert.equal(out.readUInt32LE(75), 100 + 24);
    assert.equal(out.readUInt32LE(83), 5000 + 24);
    assert.equal(out.readUInt16LE(79), 1); // the rest of each folder entry is kept
    assert.equal(plan.bodyStart, head.length);
    assert.equal(plan.signatureOffset, size + RESERVE_INSERT_BYTES);
  });

  it('the planned head, once its signature is recorded, is found as signed at cbCabinet', () => {
    const head = header([100], 1000);
    const result = planSigning(head, head.readUInt32LE(8));
    assert.ok(result.ok);
    const { plan } = result;
    recordSignature(plan.head, plan.signatureOffset, 64);
    const loc = locateSignature(plan.head, plan.signatureOffset + 64);
    assert.deepEqual(loc, { kind: 'signed', offset: plan.signatureOffset, size: 64 });
    assert.deepEqual(signedDigestRanges(plan.signatureOffset).at(-1), { start: 56, end: plan.signatureOffset });
  });

  it('refuses cabinets that reserve bytes per data block', () => {
    const head = header([100], 1000);
    const withReserve = Buffer.concat([head.subarray(0, 36), Buffer.from([0, 0, 0, 8]), head.subarray(36)]);
    withReserve.writeUInt16LE(CAB_FLAGS.reservePresent, 30);
    withReserve.writeUInt32LE(withReserve.readUInt32LE(16) + 4, 16);
    const result = planSigning(withReserve, 5000);
    assert.equal(result.ok, false);
  });
});

describe('locateSignature', () => {
  it('tells unsigned, not-a-cabinet, truncated and trailing data apart', () => {
    const head = header([100], 1000);
    const result = planSigning(head, head.readUInt32LE(8));
    assert.ok(result.ok);
    const signedHead = result.plan.head;
    recordSignature(signedHead, 2000, 64);
    assert.equal(locateSignature(head, 2000).kind, 'unsigned');
    assert.equal(locateSignature(Buffer.from('<html>not a cab at all</html>....'), 40).kind, 'not-cabinet');
    assert.equal(locateSignature(signedHead, 2030).kind, 'truncated');
    assert.equal(locateSignature(signedHead, 2100).kind, 'trailing-data');
    const altered = Buffer.from(signedHead);
    altered[39] = 4; // cbCFData, not covered by the digest
    assert.equal(locateSignature(altered, 2064).kind, 'unsigned-fields-altered');
  });
});
