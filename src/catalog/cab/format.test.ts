import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blockChecksum } from './checksum.ts';
import { HeaderParseError, dosDateTime, parseCabinet, readSignatureReserve, toDosDateTime } from './format.ts';

/** A minimal valid cabinet header area: one stored folder, the given file entries. */
function header(files: { name: string; folder?: number }[], flags = 0, extra: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(36);
  head.write('MSCF', 0, 'latin1');
  head.writeUInt32LE(1000, 8);
  head[24] = 3;
  head[25] = 1;
  head.writeUInt16LE(1, 26);
  head.writeUInt16LE(files.length, 28);
  head.writeUInt16LE(flags, 30);
  const folder = Buffer.alloc(8);
  folder.writeUInt32LE(200, 0);
  folder.writeUInt16LE(1, 4);
  const entries = files.map((f) => {
    const e = Buffer.alloc(16);
    e.writeUInt32LE(5, 0);
    e.writeUInt16LE(f.folder ?? 0, 8);
    return Buffer.concat([e, Buffer.from(f.name + '\0', 'latin1')]);
  });
  return Buffer.concat([head, extra, folder, ...entries]);
}

const failsWith = (kind: string) => (e: unknown) => e instanceof HeaderParseError && e.kind === kind;

describe('parseCabinet', () => {
  it('reads folders and files, with absolute data offsets for embedded cabinets', () => {
    const parsed = parseCabinet(header([{ name: 'a.txt' }, { name: 'b.txt' }]), 64);
    assert.equal(parsed.folders[0]!.dataOffset, 264);
    assert.deepEqual(
      parsed.files.map((f) => Buffer.from(f.rawName).toString()),
      ['a.txt', 'b.txt'],
    );
  });

  it('reports a cut header as truncated and bad contents as format errors', () => {
    const full = header([{ name: 'a.txt' }]);
    assert.throws(() => parseCabinet(full.subarray(0, 30), 0), failsWith('truncated'));
    assert.throws(() => parseCabinet(full.subarray(0, full.length - 3), 0), failsWith('truncated'));
    assert.throws(
      () => parseCabinet(Buffer.from('MSCX' + full.subarray(4).toString('latin1'), 'latin1'), 0),
      failsWith('signature'),
    );
    assert.throws(() => parseCabinet(header([{ name: '' }]), 0), failsWith('format'));
    assert.throws(() => parseCabinet(header([{ name: 'a', folder: 1 }]), 0), failsWith('format'));
    assert.throws(() => parseCabinet(header([{ name: 'x'.repeat(300) }]), 0), failsWith('format'));
  });

  it('finds the Authenticode signature location in a signtool-style header reserve', () => {
    // The 20-byte reserve of gcab's test-signed.cab: magic, offset 139, size 2040, 8 zero bytes.
    const reserve = Buffer.from('000010008b000000f80700000000000000000000', 'hex');
    const extra = Buffer.concat([Buffer.from([20, 0, 0, 0]), reserve]);
    const parsed = parseCabinet(header([{ name: 'a' }], 0x0004, extra), 0);
    assert.deepEqual(parsed.header.signature, { offset: 139, size: 2040 });
    assert.equal(readSignatureReserve(Buffer.alloc(20)), undefined);
  });

  it('round-trips MS-DOS dates at 2-second resolution', () => {
    const when = new Date(Date.UTC(2026, 10, 21, 7, 8, 10));
    const { date, time } = toDosDateTime(when);
    assert.equal(dosDateTime(date, time).toISOString(), when.toISOString());
  });
});

describe('blockChecksum', () => {
  it('matches the checksum Microsoft tools store (block of gcab/test-signed.cab)', () => {
    const data = Buffer.from('6563686f206f6c610a4f6c61210a', 'hex');
    assert.equal(blockChecksum(data, 14, 14), 0x6f66624b);
  });
});
