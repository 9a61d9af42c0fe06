/**
 * Real CAB test vectors against our pure-TypeScript reader. The vectors and their expected
 * results live outside the repository, in ../shared/testdata/cab (see SOURCES.md there: public
 * cabinets from libmspack, cabextract, libarchive, gcab, python-cabarchive and node-cabarc, with
 * expected.json recorded from Debian's cabextract 1.9). Nothing is copied into the repo.
 *
 * For every entry: an `ok` cabinet must give exactly the expected members (path bytes, size,
 * sha256, order). A bad one must be rejected with a CabError, or give exactly the expected good
 * members and fail the others with a CabError. Each vector has its own timeout so a hang fails.
 * PATCHLINE_SKIP_LARGE=1 skips streaming a 2 GiB member of large-files.cab.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CabError,
  extractFile,
  forEachMember,
  openCab,
  openFileStream,
  type Cabinet,
} from '../src/catalog/cab/index.ts';
import { skipWithoutTestdata, testdata } from './testdata.ts';

const VECTORS_DIR = testdata('cab');
const EXPECTED_PATH = join(VECTORS_DIR, 'expected.json');
const VECTOR_TIMEOUT_MS = 30_000;
const LARGE_TIMEOUT_MS = 300_000;
/** Mutated copies per seed vector in the robustness test. */
const MUTANTS_PER_VECTOR = Number(process.env['PATCHLINE_CAB_MUTANTS'] ?? 60);
const FUZZ_TIMEOUT_MS = 60_000;
const FUZZ_SEEDS = [
  'node-cabarc/lzx-21.cab',
  'node-cabarc/mszip.cab',
  'libarchive/test_fuzz.cab',
  'libmspack/mszip_lzx_qtm.cab',
  'libmspack/normal_2files_2folders.cab',
  'libmspack/reserve_HFD.cab',
  'cabextract/bugs/cve-2010-2801-qtm-flush.cab',
  'libarchive/test_read_format_cab_3.cab',
];

/** Small deterministic PRNG (mulberry32) so a failing mutant can be reproduced from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(original: Buffer, random: () => number): Buffer {
  const data = Buffer.from(original);
  const kind = random();
  if (kind < 0.15) return data.subarray(0, Math.floor(random() * data.length));
  const flips = 1 + Math.floor(random() * 8);
  for (let i = 0; i < flips; i++) {
    const at = random() < 0.5 ? Math.floor(random() * Math.min(data.length, 120)) : Math.floor(random() * data.length);
    data[at] = random() < 0.3 ? 0xff : Math.floor(random() * 256);
  }
  return data;
}

interface ExpectedFile {
  name: string;
  name_hex?: string;
  size: number;
  sha256: string;
}
interface Expected {
  ok: boolean;
  files?: ExpectedFile[];
  failed_files?: { name: string; error: string }[];
}

const haveVectors = existsSync(EXPECTED_PATH);
const expected: Record<string, Expected> = haveVectors ? JSON.parse(readFileSync(EXPECTED_PATH, 'utf8')) : {};
const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-cab-'));
  tempDirs.push(dir);
  return dir;
}

function expectedPathHex(f: ExpectedFile): string {
  return f.name_hex ?? Buffer.from(f.name, 'utf8').toString('hex');
}

interface Outcome {
  good: { path: string; size: number; sha256: string }[];
  bad: { path: string; error: CabError }[];
  rejected?: CabError;
}

/** Read every member as `cabextract -t` would: in order, hashing, collecting per-member failures. */
async function readAll(path: string): Promise<Outcome> {
  let cab: Cabinet;
  try {
    cab = await openCab(path);
  } catch (error) {
    if (error instanceof CabError) return { good: [], bad: [], rejected: error };
    throw error;
  }
  try {
    const { done, failed } = await forEachMember(
      cab,
      async (file, chunks) => {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
        }
        return { path: file.pathBytes.toString('hex'), size, sha256: hash.digest('hex') };
      },
      { continueOnError: true },
    );
    return {
      good: done.map((d) => d.result),
      bad: failed.map((f) => ({ path: f.file.pathBytes.toString('hex'), error: f.error })),
    };
  } finally {
    await cab.close();
  }
}

function check(key: string, exp: Expected, got: Outcome): void {
  const want = (exp.files ?? []).map((f) => ({ path: expectedPathHex(f), size: f.size, sha256: f.sha256 }));
  if (exp.ok) {
    assert.equal(got.rejected, undefined, `${key}: rejected: ${got.rejected?.message}`);
    assert.deepEqual(
      got.bad.map((b) => `${b.path}: ${b.error.message}`),
      [],
      `${key}: members failed`,
    );
    assert.deepEqual(got.good, want, `${key}: members differ`);
    return;
  }
  if (got.rejected) {
    assert.ok(got.rejected instanceof CabError);
    assert.equal(want.length, 0, `${key}: rejected, but cabextract extracts ${want.length} members from it`);
    return;
  }
  assert.deepEqual(got.good, want, `${key}: the members that extract differ from cabextract's`);
  for (const b of got.bad) assert.ok(b.error instanceof CabError);
  assert.equal(got.bad.length + got.good.length > 0 || want.length === 0, true);
  assert.equal(got.bad.length, exp.failed_files?.length ?? got.bad.length, `${key}: failed members differ`);
}

describe(
  'CAB vectors from the shared test data',
  { skip: haveVectors ? false : skipWithoutTestdata('cab', 'expected.json') || 'vectors not found' },
  () => {
    for (const [key, exp] of Object.entries(expected)) {
      if (key.includes('#') || key.includes('!')) continue;
      it(
        `${key} ${exp.ok ? 'extracts like cabextract' : 'fails safely like cabextract'}`,
        { timeout: VECTOR_TIMEOUT_MS },
        async () => {
          check(key, exp, await readAll(join(VECTORS_DIR, key)));
        },
      );
    }

    it(
      'libmspack/multi_basic_pt1.cab#as-set: a spanned set whose parts sit under the names the headers give',
      { timeout: VECTOR_TIMEOUT_MS },
      async () => {
        const exp = expected['libmspack/multi_basic_pt1.cab#as-set']!;
        const dir = await tempDir();
        for (let i = 1; i <= 5; i++) {
          await copyFile(
            join(VECTORS_DIR, `libmspack/multi_basic_pt${i}.cab`),
            join(dir, `cabd_multi_basic_pt${i}.cab`),
          );
        }
        check('#as-set', exp, await readAll(join(dir, 'cabd_multi_basic_pt1.cab')));
      },
    );

    it(
      'mutated vectors (flipped bytes, truncation) only ever fail with a CabError, never a crash or a hang',
      { timeout: FUZZ_TIMEOUT_MS },
      async () => {
        const dir = await tempDir();
        let rejected = 0;
        let memberFailures = 0;
        for (const [v, seedPath] of FUZZ_SEEDS.entries()) {
          const original = await readFile(join(VECTORS_DIR, seedPath));
          for (let m = 0; m < MUTANTS_PER_VECTOR; m++) {
            const seed = v * 1000 + m;
            const path = join(dir, `mutant-${seed}.cab`);
            await writeFile(path, mutate(original, prng(seed)));
            let outcome: Outcome;
            try {
              outcome = await readAll(path);
            } catch (error) {
              assert.fail(`mutant ${seed} of ${seedPath} threw a non-CabError: ${(error as Error).stack}`);
            }
            if (outcome.rejected) rejected++;
            memberFailures += outcome.bad.length;
            await rm(path);
          }
        }
        // The mutations must actually reach the error paths, or this test proves nothing.
        assert.ok(rejected > 0 && memberFailures > 0, `rejected ${rejected}, member failures ${memberFailures}`);
      },
    );

    it(
      'large-files-cab.cab!large-files.cab: nested cabinet, 2 GiB LZX:21 member streamed into sha256',
      {
        timeout: LARGE_TIMEOUT_MS,
        skip: process.env['PATCHLINE_SKIP_LARGE'] === '1' ? 'PATCHLINE_SKIP_LARGE=1' : false,
      },
      async () => {
        const exp = expected['cabextract/cabs/large-files-cab.cab!large-files.cab']!;
        const dir = await tempDir();
        const outer = await openCab(join(VECTORS_DIR, 'cabextract/cabs/large-files-cab.cab'));
        let innerPath: string;
        try {
          innerPath = (await extractFile(outer, 'large-files.cab', dir))!;
        } finally {
          await outer.close();
        }
        const inner = await openCab(innerPath);
        try {
          assert.deepEqual(
            inner.files.map((f) => [f.path, f.size]),
            exp.files!.map((f) => [f.name, f.size]),
          );
          const member = exp.files!.find((f) => f.name === 'lzx21-2gb.txt')!;
          const hash = createHash('sha256');
          const started = process.hrtime.bigint();
          let size = 0;
          for await (const chunk of openFileStream(inner, member.name)) {
            hash.update(chunk as Buffer);
            size += (chunk as Buffer).length;
          }
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          console.log(
            `# large-files.cab ${member.name}: ${size} bytes in ${seconds.toFixed(1)} s (${(size / 1e6 / seconds).toFixed(0)} MB/s)`,
          );
          assert.equal(size, member.size);
          assert.equal(hash.digest('hex'), member.sha256);
        } finally {
          await inner.close();
        }
      },
    );
  },
);
