import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CabError, extractAll, extractFile, openCab, openFileStream, writeCab } from './index.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchline-cab-extract-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('extraction', () => {
  it('never writes outside the destination, whatever the member names say', async () => {
    const cabPath = join(dir, 'hostile.cab');
    await writeCab(
      cabPath,
      [
        { name: '..\\..\\evil.txt', source: Buffer.from('1') },
        { name: '\\absolute\\path.txt', source: Buffer.from('2') },
        { name: 'ok\\file.txt', source: Buffer.from('3') },
        { name: 'up\\..', source: Buffer.from('4') },
      ],
      { compression: 'mszip' },
    );
    const cab = await openCab(cabPath);
    const out = join(dir, 'out');
    const progress: number[] = [];
    try {
      const report = await extractAll(cab, out, {
        continueOnError: true,
        onProgress: (p) => progress.push(p.filesDone),
      });
      assert.deepEqual(
        report.extracted.map((e) => e.file.path),
        ['xx/xx/evil.txt', 'absolute/path.txt', 'ok/file.txt'],
      );
      assert.deepEqual(
        report.failed.map((f) => [f.file.name, f.error.code]),
        [['up\\..', 'CAB_CORRUPT']],
      );
      assert.deepEqual(progress, [1, 2, 3, 4]);
    } finally {
      await cab.close();
    }
    assert.deepEqual((await readdir(dir)).sort(), ['hostile.cab', 'out']);
    assert.equal(await readFile(join(out, 'xx/xx/evil.txt'), 'utf8'), '1');
  });

  it('extracts one member to a stream or a directory and names a missing member clearly', async () => {
    const cabPath = join(dir, 'two.cab');
    await writeCab(
      cabPath,
      [
        { name: 'index.xml', source: Buffer.from('<INDEX/>') },
        { name: 'package.cab', source: Buffer.alloc(100_000, 7) },
      ],
      { compression: 'mszip' },
    );
    const cab = await openCab(cabPath);
    try {
      const sink = new PassThrough();
      const chunks: Buffer[] = [];
      sink.on('data', (c: Buffer) => chunks.push(c));
      await extractFile(cab, 'package.cab', sink);
      assert.ok(Buffer.concat(chunks).equals(Buffer.alloc(100_000, 7)));
      const written = await extractFile(cab, 'index.xml', join(dir, 'one'));
      assert.equal(await readFile(written!, 'utf8'), '<INDEX/>');
      assert.throws(
        () => openFileStream(cab, 'nope.xml'),
        (e: unknown) => e instanceof CabError && e.code === 'CAB_NOT_FOUND',
      );
    } finally {
      await cab.close();
    }
  });

  it('rejects a file that is not a cabinet with CAB_CORRUPT and a missing one with CAB_NOT_FOUND', async () => {
    const notCab = join(dir, 'not.cab');
    await writeFile(notCab, 'just text, no signature');
    await assert.rejects(openCab(notCab), (e: unknown) => e instanceof CabError && e.code === 'CAB_CORRUPT');
    await assert.rejects(
      openCab(join(dir, 'missing.cab')),
      (e: unknown) => e instanceof CabError && e.code === 'CAB_NOT_FOUND',
    );
  });
});
