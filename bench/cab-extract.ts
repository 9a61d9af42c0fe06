/**
 * CAB extraction throughput. Streams the largest LZX vectors (from ../shared/testdata/cab,
 * outside the repo) through our pure-TypeScript decoder into sha256 and prints one JSON line:
 * MB/s of decompressed output for the 14.6 MB LZX:21 outer cabinet and for the first
 * BENCH_LARGE_MB (default 512) MiB of a 2 GiB LZX:21 member of the nested large-files.cab
 * (both very compressible, so mostly long matches), and the worst case: 8 MiB of random bytes
 * coded as LZX:21 literals only.
 * Usage: node --import tsx bench/cab-extract.ts
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { extractFile, memberChunks, openCab } from '../src/catalog/cab/index.ts';
import { LzxDecoder } from '../src/catalog/cab/lzx.ts';
import { encodeLzxLiterals } from '../src/catalog/cab/lzx-test-encoder.ts';

const VECTORS_DIR = fileURLToPath(new URL('../../shared/testdata/cab/', import.meta.url));
const LARGE_LIMIT_BYTES = Number(process.env['BENCH_LARGE_MB'] ?? 512) * 1024 * 1024;

interface Figures {
  bytes: number;
  seconds: number;
  mbPerSecond: number;
  cpuSeconds: number;
  mbPerCpuSecond: number;
}

/** Wall-clock and CPU figures: on a shared machine CPU time is the fairer measure of the decoder. */
function figures(bytes: number, started: bigint, cpuStart: NodeJS.CpuUsage): Figures {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const round = (x: number): number => Number(x.toFixed(3));
  return {
    bytes,
    seconds: round(seconds),
    mbPerSecond: round(bytes / 1e6 / seconds),
    cpuSeconds: round(cpuSeconds),
    mbPerCpuSecond: round(bytes / 1e6 / cpuSeconds),
  };
}

async function timeMember(cabPath: string, member: string, limitBytes = Infinity): Promise<Figures> {
  const cab = await openCab(cabPath);
  try {
    const hash = createHash('sha256');
    const started = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    let bytes = 0;
    for await (const chunk of memberChunks(cab, member)) {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes >= limitBytes) break;
    }
    return figures(bytes, started, cpuStart);
  } finally {
    await cab.close();
  }
}

/** Decode 8 MiB of literal-only LZX:21 frames (no matches: the slowest path per output byte). */
function literalThroughput(): Figures {
  const data = randomBytes(8 * 1024 * 1024);
  const frames = encodeLzxLiterals(data, 21);
  const decoder = new LzxDecoder(21);
  const started = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  let bytes = 0;
  for (const frame of frames) bytes += decoder.decodeFrame(frame, 32768).length;
  return figures(bytes, started, cpuStart);
}

const dir = await mkdtemp(join(tmpdir(), 'patchline-cab-bench-'));
try {
  const outerPath = join(VECTORS_DIR, 'cabextract/cabs/large-files-cab.cab');
  const outer = await timeMember(outerPath, 'large-files.cab');
  const cab = await openCab(outerPath);
  const innerPath = (await extractFile(cab, 'large-files.cab', dir))!;
  await cab.close();
  const lzx21 = await timeMember(innerPath, 'lzx21-2gb.txt', LARGE_LIMIT_BYTES);
  const lzx15 = await timeMember(innerPath, 'lzx15-2gb.txt', LARGE_LIMIT_BYTES);
  const mszip = await timeMember(innerPath, 'mszip-2gb.txt', LARGE_LIMIT_BYTES);
  console.log(
    JSON.stringify({
      bench: 'cab-extract',
      outerLzx21: outer,
      innerLzx21: lzx21,
      innerLzx15: lzx15,
      innerMszip: mszip,
      literalsLzx21: literalThroughput(),
      maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
