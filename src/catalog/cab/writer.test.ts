import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CabError, extractAll, openCab, openFileStream, writeCab, type CabMember } from './index.ts';

const run = promisify(execFile);
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchline-cab-writer-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cabextractAvailable(): Promise<boolean> {
  try {
    await run('cabextract', ['--version']);
    return true;
  } catch {
    return false;
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const FIXED_DATE = new Date(Date.UTC(2024, 4, 17, 10, 30, 42));

/** A structurally faithful little wsusscn2.cab: index.xml, package.cab and two shards. */
async function catalogMembers(): Promise<{ members: CabMember[]; bytes: Map<string, Buffer>; xml: Buffer }> {
  const xml = Buffer.from(
    '<OfflineSyncPackage>' + '<Update UpdateId="x" RevisionId="1"/>'.repeat(5000) + '</OfflineSyncPackage>',
  );
  const packageCab = join(dir, 'package.cab');
  await writeCab(packageCab, [{ name: 'package.xml', source: xml, date: FIXED_DATE }], { compression: 'mszip' });
  const shard = randomBytes(100_000); // incompressible: MSZIP falls back to stored deflate blocks
  const bytes = new Map<string, Buffer>([
    ['index.xml', Buffer.from('<INDEX VERSION="1"><CABLIST XOR="0"><CAB NAME="package.cab"/></CABLIST></INDEX>')],
    ['package.cab', await readFile(packageCab)],
    ['package2.cab', shard],
    ['package3.cab', Buffer.alloc(70_000, 0x41)],
  ]);
  const members: CabMember[] = [...bytes].map(([name, data], i) => ({
    name,
    source: i === 1 ? packageCab : data,
    date: FIXED_DATE,
  }));
  return { members, bytes, xml };
}

describe('writeCab', () => {
  for (const compression of ['none', 'mszip'] as const) {
    it(`writes a ${compression} cabinet our reader extracts byte for byte, with the header reserve for a signature`, async () => {
      const { members, bytes, xml } = await catalogMembers();
      const out = join(dir, `wsusscn2-${compression}.cab`);
      const result = await writeCab(out, members, { compression, reserve: { header: 20 } });
      const cab = await openCab(out);
      try {
        assert.equal(cab.header.cabinetSize, result.size);
        assert.equal(cab.header.reserve.header, 20);
        assert.equal(result.headerReserveOffset, 40);
        assert.equal(cab.folders[0]!.compression, compression);
        assert.deepEqual(
          cab.files.map((f) => f.name),
          [...bytes.keys()],
        );
        assert.deepEqual(
          cab.files.map((f) => f.date.toISOString()),
          cab.files.map(() => FIXED_DATE.toISOString()),
        );
        for (const [name, data] of bytes) {
          const chunks: Buffer[] = [];
          for await (const c of openFileStream(cab, name)) chunks.push(c as Buffer);
          assert.equal(sha(Buffer.concat(chunks)), sha(data), name);
        }
        // The nested package.cab opens and yields package.xml.
        const target = join(dir, `x-${compression}`);
        await extractAll(cab, target);
        const inner = await openCab(join(target, 'package.cab'));
        try {
          assert.deepEqual(
            inner.files.map((f) => [f.name, f.size]),
            [['package.xml', xml.length]],
          );
          const chunks: Buffer[] = [];
          for await (const c of openFileStream(inner, 'package.xml')) chunks.push(c as Buffer);
          assert.equal(sha(Buffer.concat(chunks)), sha(xml));
        } finally {
          await inner.close();
        }
      } finally {
        await cab.close();
      }
    });
  }

  it('is read by Debian cabextract identically (skipped when cabextract is not installed)', async (t) => {
    if (!(await cabextractAvailable())) {
      t.skip('cabextract is not installed (apt-get install cabextract)');
      return;
    }
    const { members, bytes } = await catalogMembers();
    for (const compression of ['none', 'mszip'] as const) {
      const out = join(dir, `cx-${compression}.cab`);
      await writeCab(out, members, { compression, reserve: { header: 20 } });
      const target = join(dir, `cx-out-${compression}`);
      await run('cabextract', ['-q', '-d', target, out]);
      for (const [name, data] of bytes)
        assert.equal(sha(await readFile(join(target, name))), sha(data), `${compression} ${name}`);
      const { stdout } = await run('cabextract', ['-t', out]);
      assert.match(stdout, /All done, no errors/);
    }
  });

  it('refuses names and reserves the format cannot hold', async () => {
    await assert.rejects(
      writeCab(join(dir, 'bad.cab'), [{ name: '', source: Buffer.alloc(1) }], { compression: 'none' }),
      CabError,
    );
    await assert.rejects(
      writeCab(join(dir, 'bad.cab'), [{ name: 'a', source: Buffer.alloc(1) }], {
        compression: 'none',
        reserve: { header: 70_000 },
      }),
      CabError,
    );
  });
});
