/**
 * bench/content: 200 agents ask the server's content cache for the same 20 updates at the same
 * moment; prints one JSON line with the upstream bytes, the unique needed bytes and their ratio
 * (target 1.00: every payload fetched from upstream exactly once).
 *
 * Everything is real HTTP on loopback: the lab's payload upstream, a content endpoint that does
 * what the server does (ensure the file in the cache, then serve it with Range/ETag), and 200
 * agents starting together, each fetching every file one after the other (as an agent does)
 * and checking its SHA-256.
 *
 *   npm run bench:content
 *   BENCH_AGENTS=50 BENCH_UPDATES=5 BENCH_FILE_KB=512 npm run bench:content
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContentCache } from '../src/content/cache.ts';
import type { ContentFileSpec } from '../src/content/digest.ts';
import { createPayloadStore } from '../src/lab/payloads.ts';
import { parseScenario } from '../src/lab/scenario.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);
const UPDATES = Number(process.env.BENCH_UPDATES ?? 20);
const FILE_KB = Number(process.env.BENCH_FILE_KB ?? 64);

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 1024, resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

async function main(): Promise<void> {
  // Sizes vary (0.5× to 1.5× FILE_KB) so a mix-up between files would show as a byte difference.
  const entries = Array.from({ length: UPDATES }, (_, i) => {
    const sizeMB = ((FILE_KB * (0.5 + i / Math.max(1, UPDATES - 1))) / 1024).toFixed(4);
    return `  - { key: u${i}, kb: ${5050000 + i}, title: Update ${i} (KB${5050000 + i}), classification: Security Updates, severity: Critical, products: [Windows Server 2022], sizeMB: ${sizeMB}, released: 2026-11-10 }`;
  });
  const scenario = parseScenario(
    `payloadScale: 1\ncatalog:\n${entries.join('\n')}\nhosts:\n  - { name: h1, product: Windows Server 2022 }\n`,
    'bench-content',
  );
  const payloads = createPayloadStore(scenario);

  let upstreamBytes = 0;
  const upstream = createServer((req, res) => {
    const write = res.write.bind(res) as (chunk: Buffer) => boolean;
    res.write = ((chunk: Buffer) => {
      upstreamBytes += chunk.length;
      return write(chunk);
    }) as typeof res.write;
    if (!payloads.handle(req, res)) res.writeHead(404).end();
  });
  const upstreamUrl = await listen(upstream);

  const specs = new Map<string, ContentFileSpec & { sha256: string }>();
  for (const e of scenario.catalog) {
    const info = payloads.info(e);
    specs.set(info.sha256, {
      sha1: info.sha1,
      sha256: info.sha256,
      size: info.size,
      url: payloads.urlFor(e, upstreamUrl),
    });
  }
  const uniqueNeededBytes = [...specs.values()].reduce((n, s) => n + s.size!, 0);

  const dir = mkdtempSync(join(tmpdir(), 'patchline-bench-content-'));
  const cache = createContentCache({ dir });
  // The server's side: a request for a needed file ensures it (single flight), then serves it.
  const server = createServer((req, res) => {
    const digest = new URL(req.url ?? '/', 'http://server').pathname.slice(1);
    const spec = specs.get(digest);
    if (!spec) return void res.writeHead(404).end();
    cache.ensure(spec).then(
      () => {
        const r = cache.serve(digest, { method: req.method ?? 'GET', headers: req.headers });
        res.writeHead(r.status, r.headers);
        if (r.body) r.body.pipe(res);
        else res.end();
      },
      (error: Error) => res.writeHead(502).end(error.message),
    );
  });
  const serverUrl = await listen(server);

  const started = performance.now();
  let verified = 0;
  let failures = 0;
  const digests = [...specs.keys()];
  // Every agent starts at once, each on its own file first (rotated), then takes the rest one by
  // one as an agent does: at the first instant all 20 files are asked for by 10 agents each.
  await Promise.all(
    Array.from({ length: AGENTS }, async (_, a) => {
      for (let i = 0; i < digests.length; i++) {
        const digest = digests[(a + i) % digests.length]!;
        try {
          const res = await fetch(`${serverUrl}/${digest}`);
          const bytes = Buffer.from(await res.arrayBuffer());
          if (res.status === 200 && createHash('sha256').update(bytes).digest('hex') === digest) verified += 1;
          else failures += 1;
        } catch (error) {
          failures += 1;
          console.error(`agent ${a}: ${digest}: ${(error as Error).message}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const stats = cache.stats();
  console.log(
    JSON.stringify({
      agents: AGENTS,
      updates: UPDATES,
      requests: AGENTS * UPDATES,
      verified,
      failures,
      upstreamBytes,
      uniqueNeededBytes,
      ratio: Number((upstreamBytes / uniqueNeededBytes).toFixed(2)),
      servedBytes: stats.servedBytes,
      seconds: Number(seconds.toFixed(2)),
    }),
  );
  await cache.close();
  server.closeAllConnections();
  upstream.closeAllConnections();
  server.close();
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
  if (failures > 0 || upstreamBytes !== uniqueNeededBytes) process.exitCode = 1;
}

await main();
