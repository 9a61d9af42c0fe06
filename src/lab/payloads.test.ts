import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPayloadStore, parseRange, payloadPath, payloadSize, PAYLOAD_MIN_BYTES } from './payloads.ts';
import { parseScenario } from './scenario.ts';

const scenario = parseScenario(
  `
payloadScale: 0.1
catalog:
  - { key: lcu, kb: 5044444, title: CU, classification: Security Updates, products: [P], released: 2026-11-11, sizeMB: 2 }
  - { key: def, title: Defender, classification: Definition Updates, products: [P], released: 2026-11-20, sizeMB: 0.001 }
  - { key: drv, title: Driver, classification: Drivers, type: driver, products: [P], released: 2026-10-02 }
hosts: [{ name: h, product: P }]
`,
  'payloads.yaml',
);
const entry = (key: string) => {
  const e = scenario.byKey.get(key);
  assert.ok(e);
  return e;
};

describe('payload sizes and URLs', () => {
  it('scales sizeMB with a 4 KiB floor', () => {
    assert.equal(payloadSize({ sizeMB: 2 }, 0.1), Math.round(2 * 1024 * 1024 * 0.1));
    assert.equal(payloadSize({ sizeMB: 0.001 }, 0.1), PAYLOAD_MIN_BYTES);
  });
  it('shapes URLs like Microsoft download URLs with the SHA-1 in the name', () => {
    const sha1 = 'a'.repeat(40);
    assert.equal(
      payloadPath(entry('lcu'), sha1),
      `/d/msdownload/update/software/secu/2026/11/windows10.0-kb5044444-x64_${sha1}.msu`,
    );
    assert.equal(payloadPath(entry('def'), sha1), `/d/msdownload/update/software/updt/2026/11/def-x64_${sha1}.exe`);
    assert.equal(payloadPath(entry('drv'), sha1), `/c/msdownload/update/driver/drvs/2026/10/drv_${sha1}.cab`);
  });
  it('parses ranges', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), [0, 9]);
    assert.deepEqual(parseRange('bytes=90-', 100), [90, 99]);
    assert.deepEqual(parseRange('bytes=-10', 100), [90, 99]);
    assert.deepEqual(parseRange('bytes=50-500', 100), [50, 99]);
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,5-6', 100), null);
    assert.equal(parseRange(undefined, 100), null);
  });
});

describe('payload HTTP handler on 127.0.0.1', () => {
  const store = createPayloadStore(scenario);
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      if (!store.handle(req, res)) res.writeHead(404).end('not a payload');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('serves the whole payload; its SHA-256, SHA-1 and size match the store', async () => {
    const info = store.info(entry('lcu'));
    const res = await fetch(store.urlFor(entry('lcu'), base));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(info.size));
    assert.equal(res.headers.get('etag'), `"${info.sha256}"`);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body.length, info.size);
    assert.equal(createHash('sha256').update(body).digest('hex'), info.sha256);
    assert.ok(info.path.includes(createHash('sha1').update(body).digest('hex')));
    // Deterministic: a second store for the same scenario yields the same bytes.
    assert.equal(createPayloadStore(scenario).info(entry('lcu')).sha256, info.sha256);
    assert.notEqual(store.info(entry('def')).sha256, info.sha256);
  });

  it('serves ranges that splice into the whole file, 416 past the end, HEAD and 304', async () => {
    const url = store.urlFor(entry('lcu'), base);
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
    const size = whole.length;
    const part = await fetch(url, { headers: { range: 'bytes=1000-70000' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-70000/${size}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), whole.subarray(1000, 70001));
    const tail = await fetch(url, { headers: { range: 'bytes=-7' } });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), whole.subarray(size - 7));
    const beyond = await fetch(url, { headers: { range: `bytes=${size}-` } });
    assert.equal(beyond.status, 416);
    await beyond.arrayBuffer();
    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(size));
    const cached = await fetch(url, { headers: { 'if-none-match': head.headers.get('etag') ?? '' } });
    assert.equal(cached.status, 304);
  });

  it('leaves other paths to the caller, also under a mount prefix', async () => {
    const other = await fetch(`${base}/hosts/h/status`);
    assert.equal(other.status, 404);
    assert.equal(await other.text(), 'not a payload');
    const prefixed = await fetch(`${base}/upstream${store.info(entry('def')).path}`);
    assert.equal(prefixed.status, 200);
    assert.equal(Buffer.from(await prefixed.arrayBuffer()).length, PAYLOAD_MIN_BYTES);
  });
});
