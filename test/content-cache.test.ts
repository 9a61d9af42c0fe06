/**
 * The content cache against a real HTTP upstream on loopback (the lab's payload upstream): one
 * upstream download per file however many ask at once, bytes that do not match the catalog are
 * refused and fetched again, a restart resumes with Range, cleanup frees what no host needs once
 * its grace has passed, and cached files are served with Range and immutable headers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { createContentCache, type ContentEvent } from '../src/content/cache.ts';
import type { ContentFileSpec } from '../src/content/digest.ts';
import { serveContent } from '../src/content/serve.ts';
import { createPayloadStore, type PayloadStore } from '../src/lab/payloads.ts';
import { parseScenario, type CatalogEntry } from '../src/lab/scenario.ts';

const SCENARIO = parseScenario(
  `
payloadScale: 0.002
catalog:
  - { key: lcu, kb: 5044445, title: Cumulative Update (KB5044445), classification: Security Updates, severity: Critical, products: [Windows Server 2022], sizeMB: 300, released: 2026-11-10 }
  - { key: net, kb: 5044447, title: .NET Update (KB5044447), classification: Security Updates, severity: Important, products: [Windows Server 2022], sizeMB: 70, released: 2026-11-10 }
  - { key: ssu, kb: 5044444, title: Servicing Stack Update (KB5044444), classification: Security Updates, severity: Critical, products: [Windows Server 2022], sizeMB: 18, released: 2026-11-10 }
hosts:
  - { name: web01, product: Windows Server 2022 }
`,
  'content-cache.test',
);

/** The lab upstream, counting requests and bytes per path, with faults a test can arm. */
class Upstream {
  readonly payloads: PayloadStore = createPayloadStore(SCENARIO);
  readonly requests: { path: string; range: string | undefined }[] = [];
  bytes = 0;
  /** Paths whose next response has one byte flipped. */
  readonly corruptOnce = new Set<string>();
  /** Path → bytes after which the response stalls (the connection stays open). */
  readonly stallAfter = new Map<string, number>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  spec(key: string): ContentFileSpec & { entry: CatalogEntry } {
    const entry = SCENARIO.byKey.get(key)!;
    const info = this.payloads.info(entry);
    // As the catalog stores them: SHA-1 in base64 (File/@Digest), SHA-256 in base64 (AdditionalDigest).
    return {
      entry,
      sha1: Buffer.from(info.sha1, 'hex').toString('base64'),
      sha256: Buffer.from(info.sha256, 'hex').toString('base64'),
      url: this.payloads.urlFor(entry, this.url),
      size: info.size,
    };
  }

  requestsFor(key: string): { path: string; range: string | undefined }[] {
    const path = this.payloads.info(SCENARIO.byKey.get(key)!).path;
    return this.requests.filter((r) => r.path === path);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', this.url).pathname;
    this.requests.push({ path, range: req.headers.range });
    const entry = SCENARIO.catalog.find((e) => this.payloads.info(e).path === path);
    const write = res.write.bind(res) as (chunk: Buffer) => boolean;
    res.write = ((chunk: Buffer) => {
      this.bytes += chunk.length;
      return write(chunk);
    }) as typeof res.write;
    if (entry && this.corruptOnce.delete(path)) {
      void buffer(this.payloads.stream(entry)).then((bytes) => {
        bytes[bytes.length >> 1]! ^= 0xff;
        res.writeHead(200, { 'content-length': String(bytes.length), etag: '"corrupt"' });
        res.write(bytes);
        res.end();
      });
      return;
    }
    const stall = this.stallAfter.get(path);
    if (entry && stall !== undefined) {
      this.stallAfter.delete(path);
      const info = this.payloads.info(entry);
      res.writeHead(200, { 'content-length': String(info.size), etag: `"${info.sha256}"` });
      void buffer(this.payloads.stream(entry, 0, stall - 1)).then((bytes) => res.write(bytes));
      return; // never ends: the cache is closed mid-download
    }
    if (!this.payloads.handle(req, res)) res.writeHead(404).end();
  }
}

async function withUpstream(fn: (up: Upstream, dir: string) => Promise<void>): Promise<void> {
  const up = new Upstream();
  await up.start();
  const dir = mkdtempSync(join(tmpdir(), 'patchline-content-'));
  try {
    await fn(up, dir);
  } finally {
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sha256Of = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

test('50 concurrent requests per update: one upstream download per file, upstream bytes = unique bytes (1.00×)', async () => {
  await withUpstream(async (up, dir) => {
    const cache = createContentCache({ dir });
    const keys = ['lcu', 'net', 'ssu'];
    const results = await Promise.all(keys.flatMap((k) => Array.from({ length: 50 }, () => cache.ensure(up.spec(k)))));
    for (const k of keys) assert.equal(up.requestsFor(k).length, 1, `${k}: one upstream request`);
    const unique = keys.reduce((n, k) => n + up.spec(k).size!, 0);
    assert.equal(up.bytes, unique);
    assert.equal(cache.stats().upstreamBytes, unique);
    for (const k of keys) {
      const info = up.payloads.info(up.spec(k).entry);
      const mine = results.filter((r) => r.sha256 === info.sha256);
      assert.equal(mine.length, 50);
      assert.equal(sha256Of(mine[0]!.path), info.sha256);
    }
    // Asked again later: served from the cache, no upstream request.
    await cache.ensure(up.spec('lcu'));
    assert.equal(up.requestsFor('lcu').length, 1);
    await cache.close();
  });
});

test('bytes that do not match the catalog are deleted, never handed out, and fetched again', async () => {
  await withUpstream(async (up, dir) => {
    const spec = up.spec('net');
    const info = up.payloads.info(spec.entry);
    up.corruptOnce.add(info.path);
    let seenWhileBad: unknown = 'not checked';
    const onEvent = (e: ContentEvent): void => {
      if (e.kind === 'rejected') seenWhileBad = cache.lookup(info.sha256);
    };
    const cache = createContentCache({ dir, onEvent });
    const file = await cache.ensure(spec);
    assert.equal(seenWhileBad, null, 'nothing is served while only bad bytes were received');
    assert.equal(up.requestsFor('net').length, 2);
    assert.equal(sha256Of(file.path), info.sha256);
    await cache.close();
  });
});

test('a catalog digest the upstream never matches: the request fails with CONTENT_DIGEST_MISMATCH and nothing is kept', async () => {
  await withUpstream(async (up, dir) => {
    const cache = createContentCache({ dir, maxAttempts: 2 });
    const spec = { ...up.spec('ssu'), sha256: 'ab'.repeat(32) };
    await assert.rejects(cache.ensure(spec), (e: Error & { code?: string }) => e.code === 'CONTENT_DIGEST_MISMATCH');
    assert.equal(up.requestsFor('ssu').length, 2);
    assert.equal(cache.lookup('ab'.repeat(32)), null);
    assert.deepEqual(readdirSync(join(dir, 'files')), []);
    assert.deepEqual(readdirSync(join(dir, 'partial')), []);
    await cache.close();
  });
});

test('a restart mid-download resumes with Range: upstream bytes equal the file size', async () => {
  await withUpstream(async (up, dir) => {
    const spec = up.spec('lcu');
    const info = up.payloads.info(spec.entry);
    const half = Math.floor(info.size / 2);
    up.stallAfter.set(info.path, half);
    let received = 0;
    let reachedHalf!: () => void;
    const halfway = new Promise<void>((resolve) => (reachedHalf = resolve));
    const first = createContentCache({
      dir,
      onEvent: (e) => {
        if (e.kind === 'progress' && (received += e.bytes) >= half) reachedHalf();
      },
    });
    const interrupted = first.ensure(spec);
    await halfway;
    await first.close(); // the server stops mid-download
    await assert.rejects(interrupted, (e: Error & { code?: string }) => e.code === 'CONTENT_CACHE_CLOSED');
    assert.equal(first.lookup(info.sha256), null);
    // Progress counts bytes once they are written: everything reported is on disk.
    const onDisk = statSync(join(dir, 'partial', info.sha256)).size;
    assert.equal(onDisk, half);
    const bytesBefore = up.bytes;

    const second = createContentCache({ dir });
    const file = await second.ensure(spec);
    const reqs = up.requestsFor('lcu');
    assert.equal(reqs.length, 2);
    assert.equal(reqs[1]!.range, `bytes=${onDisk}-`);
    assert.equal(up.bytes - bytesBefore, info.size - onDisk, 'the restart fetched only the rest');
    assert.equal(sha256Of(file.path), info.sha256);
    await second.close();
  });
});

test('cleanup: a file no host needs is kept through its grace period, then deleted with its bytes reported', async () => {
  await withUpstream(async (up, dir) => {
    let t = Date.parse('2026-11-24T03:00:00Z');
    const cache = createContentCache({ dir, now: () => new Date(t) });
    const lcu = await cache.ensure(up.spec('lcu'));
    const ssu = await cache.ensure(up.spec('ssu'));
    let report = await cache.cleanup({ needed: [lcu.sha1!] });
    assert.deepEqual([report.bytesFreed, report.kept, report.inGrace], [0, 1, 1]);
    t += 6 * 86_400_000;
    report = await cache.cleanup({ needed: [lcu.sha256!] });
    assert.equal(report.bytesFreed, 0, 'six days: still in the 7-day grace');
    t += 1 * 86_400_000 + 1;
    report = await cache.cleanup({ needed: [lcu.sha256!] });
    assert.deepEqual(report.deleted, [{ key: ssu.key, size: ssu.size }]);
    assert.equal(report.bytesFreed, ssu.size);
    assert.equal(cache.lookup(ssu.sha256!), null);
    assert.deepEqual(readdirSync(join(dir, 'files')), [lcu.key]);
    // Needed again later: fetched again.
    await cache.ensure(up.spec('ssu'));
    assert.equal(up.requestsFor('ssu').length, 2);
    await cache.close();
  });
});

test('serving a cached file over HTTP: immutable headers, ETag, Range and If-None-Match', async () => {
  await withUpstream(async (up, dir) => {
    const cache = createContentCache({ dir });
    const file = await cache.ensure(up.spec('net'));
    const server = createServer((req, res) => {
      const r = serveContent(cache.lookup(new URL(req.url!, 'http://x').pathname.slice(1)), {
        method: req.method!,
        headers: req.headers,
      });
      res.writeHead(r.status, r.headers);
      if (r.body) r.body.pipe(res);
      else res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const whole = await fetch(`${base}/${file.sha1}`);
      assert.equal(whole.status, 200);
      assert.equal(whole.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(whole.headers.get('etag'), `"${file.key}"`);
      const bytes = Buffer.from(await whole.arrayBuffer());
      assert.equal(createHash('sha256').update(bytes).digest('hex'), file.sha256);
      const part = await fetch(`${base}/${file.sha256}`, { headers: { range: 'bytes=100-199' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 100-199/${file.size}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(100, 200));
      const again = await fetch(`${base}/${file.sha256}`, { headers: { 'if-none-match': `"${file.key}"` } });
      assert.equal(again.status, 304);
      assert.equal((await fetch(`${base}/${'0'.repeat(64)}`)).status, 404);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cache.close();
    }
  });
});
