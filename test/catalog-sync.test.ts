/**
 * Catalog sync against the lab's fake Microsoft upstream over real HTTP on 127.0.0.1:
 * unchanged re-syncs transfer no body, broken downloads resume with Range and end byte-identical,
 * a file that fails verification never replaces the current one, and proxies are honoured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, utimes, writeFile, access } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncCatalog, type SyncOptions } from '../src/catalog/sync.ts';
import { proxyDispatcher } from '../src/catalog/proxy.ts';
import { startCatalogUpstream } from '../src/lab/catalog-upstream.ts';
import { PatchlineError } from '../src/domain/errors.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function fixture(t: import('node:test').TestContext, size = 3 * 1024 * 1024) {
  const dir = await mkdtemp(join(tmpdir(), 'pl-sync-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const source = join(dir, 'upstream.cab');
  const body = randomBytes(size);
  await writeFile(source, body);
  const good = sha(body);
  // Stands in for the Authenticode check here (that has its own tests): accept only the real bytes.
  const verify = async (file: string) => {
    if (sha(await readFile(file)) !== good) throw new PatchlineError('CATALOG_TAMPERED', 'digest mismatch');
  };
  return { dir, source, body, verify, local: join(dir, 'catalog') };
}

test('a second sync with the upstream unchanged transfers no body', async (t) => {
  const f = await fixture(t);
  const up = await startCatalogUpstream({ file: f.source });
  t.after(() => up.close());
  const opts: SyncOptions = { url: up.url, dir: f.local, verify: f.verify };

  const first = await syncCatalog(opts);
  assert.equal(first.changed, true);
  assert.equal(up.stats.bodyBytes, f.body.length);

  const started = performance.now();
  const second = await syncCatalog(opts);
  assert.equal(second.changed, false);
  assert.equal(second.how, 'head-unchanged');
  assert.equal(up.stats.bodyBytes, f.body.length, 'no body bytes were sent the second time');
  assert.ok(performance.now() - started < 1000);
});

test('when HEAD is refused and conditionals are ignored, unchanged validators still stop the body', async (t) => {
  const f = await fixture(t);
  const up = await startCatalogUpstream({ file: f.source });
  t.after(() => up.close());
  await syncCatalog({ url: up.url, dir: f.local, verify: f.verify });
  up.options.refuseHead = true;
  const viaConditional = await syncCatalog({ url: up.url, dir: f.local, verify: f.verify });
  assert.equal(viaConditional.how, 'not-modified');
  assert.equal(up.stats.requests.at(-1)?.status, 304);
});

test('a new catalog upstream is downloaded again', async (t) => {
  const f = await fixture(t);
  const up = await startCatalogUpstream({ file: f.source });
  t.after(() => up.close());
  await syncCatalog({ url: up.url, dir: f.local, verify: async () => {} });
  const next = randomBytes(1024 * 1024);
  await writeFile(f.source, next);
  await utimes(f.source, new Date(), new Date(Date.now() + 60_000));
  const result = await syncCatalog({ url: up.url, dir: f.local, verify: async () => {} });
  assert.equal(result.changed, true);
  assert.equal(sha(await readFile(result.file)), sha(next));
});

test('a download dropped at 40 % resumes with Range and ends byte-identical', async (t) => {
  const f = await fixture(t);
  const up = await startCatalogUpstream({ file: f.source, dropAtFraction: 0.4, dropTimes: 1 });
  t.after(() => up.close());
  const opts: SyncOptions = { url: up.url, dir: f.local, verify: f.verify };

  await assert.rejects(
    syncCatalog(opts),
    (e: unknown) =>
      e instanceof PatchlineError && e.code === 'CATALOG_DOWNLOAD_INTERRUPTED' && /resumes/.test(e.message),
  );
  const sentBefore = up.stats.bodyBytes;
  assert.ok(sentBefore <= Math.ceil(f.body.length * 0.4) + 1);

  const resumed = await syncCatalog(opts);
  assert.equal(resumed.how, 'resumed');
  const lastGet = up.stats.requests.filter((r) => r.method === 'GET').at(-1)!;
  assert.equal(lastGet.status, 206);
  const from = Number(/^bytes=(\d+)-$/.exec(lastGet.range ?? '')?.[1]);
  assert.ok(from > 0 && from <= f.body.length * 0.4, `resumed from byte ${from}, not from the start`);
  assert.equal(lastGet.bodyBytes, f.body.length - from, 'only the missing bytes were sent again');
  assert.equal(sha(await readFile(resumed.file)), sha(f.body));
});

test('a file that fails verification is rejected, removed, and the previous catalog stays', async (t) => {
  const f = await fixture(t);
  const up = await startCatalogUpstream({ file: f.source });
  t.after(() => up.close());
  const first = await syncCatalog({ url: up.url, dir: f.local, verify: f.verify });

  // The upstream now serves a changed file that fails the check.
  await writeFile(f.source, randomBytes(1024 * 1024));
  await utimes(f.source, new Date(), new Date(Date.now() + 60_000));
  await assert.rejects(
    syncCatalog({ url: up.url, dir: f.local, verify: f.verify }),
    (e: unknown) => e instanceof PatchlineError && e.code === 'CATALOG_TAMPERED',
  );
  assert.equal(sha(await readFile(first.file)), sha(f.body), 'the previous cab is untouched');
  await assert.rejects(access(join(f.local, 'wsusscn2.cab.partial')), 'the rejected bytes are not kept for a resume');
});

test('HTTP_PROXY / --proxy route the download through the proxy', async (t) => {
  const f = await fixture(t, 256 * 1024);
  const up = await startCatalogUpstream({ file: f.source });
  t.after(() => up.close());
  // A minimal CONNECT proxy that records what it tunnels.
  const tunnels: string[] = [];
  const proxy: Server = createServer();
  proxy.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        proxy.closeAllConnections();
        proxy.close(() => r());
      }),
  );
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const result = await syncCatalog({
    url: up.url,
    dir: f.local,
    verify: f.verify,
    dispatcher: proxyDispatcher(proxyUrl),
  });
  assert.equal(result.changed, true);
  assert.ok(tunnels.length > 0 && tunnels.every((u) => u === new URL(up.url).host), `tunnelled ${tunnels.join(',')}`);
  assert.equal(proxyDispatcher(undefined, {}), undefined, 'no proxy without configuration');
  assert.ok(proxyDispatcher(undefined, { HTTPS_PROXY: proxyUrl }), 'HTTPS_PROXY is honoured');
});
