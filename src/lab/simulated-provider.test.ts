import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { parseEvent, type ProviderEvent, type ResultOf, type RequestType } from '../wua/protocol.ts';
import { completeReboot } from './host-state.ts';
import { createPayloadStore } from './payloads.ts';
import { parseScenario } from './scenario.ts';
import { serveProvider, type ProviderClock } from './simulated-provider.ts';

const scenario = parseScenario(
  `
timeScale: 0.001
payloadScale: 0.01
catalog:
  - { key: ssu, kb: 5044444, title: SSU, classification: Security Updates, severity: Critical, products: [WS2022], released: 2026-11-11, sizeMB: 10 }
  - { key: cu-old, kb: 5043000, title: CU Oct, classification: Security Updates, products: [WS2022], released: 2026-10-08, reboot: always }
  - { key: cu, kb: 5044445, title: CU Nov, classification: Security Updates, products: [WS2022], released: 2026-11-11, reboot: always, requires: [ssu], supersedes: [cu-old] }
  - { key: net, kb: 5044446, title: .NET, classification: Security Updates, products: [WS2022], released: 2026-11-11, reboot: canRequest, requires: [cu] }
  - { key: def, kb: 2267602, title: Defender, classification: Definition Updates, products: [WS2022], released: 2026-11-20 }
  - { key: drv, title: Driver, classification: Drivers, type: driver, products: [WS2022], released: 2026-10-02 }
  - { key: opt, kb: 5044447, title: Preview, classification: Updates, optional: true, products: [WS2022], released: 2026-11-25 }
  - { key: tool, kb: 890830, title: MSRT, classification: Update Rollups, impact: exclusive, eula: true, products: [WS2022], released: 2026-11-11 }
hosts:
  - { name: web01, product: WS2022, installed: [cu-old] }
  - name: web02
    product: WS2022
    installed: [cu-old]
    faults:
      - { update: net, failTimes: 1, hresult: "0x80242016" }
      - { update: drv, failAlways: true, hresult: "0x800F0922" }
      - { update: def, reappearsAfterInstall: true }
      - { installerBusySeconds: 30000 }
      - { pendingRebootAtStart: true }
`,
  'provider-test.yaml',
);

const idOf = (key: string): string => {
  const e = scenario.byKey.get(key);
  assert.ok(e, key);
  return e.updateId;
};
const keyOf = (id: string): string => scenario.byId.get(id)?.key ?? id;
const SOFTWARE = "IsInstalled=0 and IsHidden=0 and Type='Software' and BrowseOnly=0";
const WAIT_MS = 5000;

/** A clock the test moves: sleeps advance it at once, so installs take no real time. */
class TestClock implements ProviderClock {
  constructor(public t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.t += ms;
    await new Promise((resolve) => setImmediate(resolve));
    signal.throwIfAborted();
  }
}

/** A clock whose sleeps never end until aborted; `sleeping` resolves at the first sleep. */
class BlockingClock implements ProviderClock {
  private started!: () => void;
  readonly sleeping = new Promise<void>((resolve) => (this.started = resolve));
  now(): Date {
    return new Date('2026-11-21T06:00:00.000Z');
  }
  sleep(_ms: number, signal: AbortSignal): Promise<void> {
    this.started();
    return new Promise((_resolve, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}

interface Session {
  readonly events: ProviderEvent[];
  request<T extends RequestType>(body: { type: T } & Record<string, unknown>): Promise<ResultOf<T>>;
  send(line: string): void;
  waitFor(pred: (e: ProviderEvent) => boolean): Promise<ProviderEvent>;
  close(): Promise<void>;
}

let upstreamUrl = '';
let server: Server;
let dirs: string[] = [];
const payloads = createPayloadStore(scenario);

async function hostDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-provider-'));
  dirs.push(dir);
  return dir;
}

function startSession(
  hostName: string,
  dir: string,
  opts: { clock?: ProviderClock; upstream?: string; fetch?: typeof fetch } = {},
): Session {
  const input = new PassThrough();
  const output = new PassThrough();
  const events: ProviderEvent[] = [];
  const invalid: string[] = [];
  const waiters: { pred: (e: ProviderEvent) => boolean; resolve: (e: ProviderEvent) => void }[] = [];
  createInterface({ input: output }).on('line', (line) => {
    let event: ProviderEvent;
    try {
      event = parseEvent(line);
    } catch (error) {
      invalid.push(`${(error as Error).message}`);
      return;
    }
    events.push(event);
    for (const w of [...waiters]) {
      if (w.pred(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });
  const done = serveProvider(input, output, {
    scenario,
    hostName,
    hostDir: dir,
    upstreamUrl: opts.upstream ?? upstreamUrl,
    payloads,
    clock: opts.clock ?? new TestClock(Date.parse('2026-11-21T06:00:00.000Z')),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  let n = 0;
  const waitFor = (pred: (e: ProviderEvent) => boolean): Promise<ProviderEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching event within ${WAIT_MS} ms; got ${JSON.stringify(events.slice(-3))}`)),
        WAIT_MS,
      );
      waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  };
  return {
    events,
    send: (line) => input.write(`${line}\n`),
    async request(body) {
      const id = `r${++n}`;
      input.write(`${JSON.stringify({ id, ...body })}\n`);
      return (await waitFor((e) => e.type === 'result' && e.requestId === id)) as never;
    },
    waitFor,
    async close() {
      input.end();
      await done;
      assert.deepEqual(invalid, [], 'every line the provider writes is a valid protocol event');
    },
  };
}

async function searchKeys(s: Session, criteria = SOFTWARE): Promise<string[]> {
  const r = await s.request({ type: 'search', criteria, serverSelection: 'default' });
  assert.equal(r.resultCode, 'succeeded', r.message);
  return (r.data?.updates ?? []).map((u) => keyOf(u.updateId));
}

const perUpdate = (r: ResultOf<'download'> | ResultOf<'install'>) =>
  (r.data?.updates ?? []).map((u) => [keyOf(u.updateId), u.resultCode, u.hresult]);

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!payloads.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

describe('simulated provider: the servicing chain', () => {
  it('says hello, then search → download → install follows prerequisites and reboots', async () => {
    const dir = await hostDir();
    const s = startSession('web01', dir);
    const hello = await s.waitFor((e) => e.type === 'hello');
    assert.equal(s.events[0], hello);
    assert.deepEqual(hello, { type: 'hello', protocol: 1, provider: 'lab', version: '0.1.0', computerName: 'web01' });

    // The CU needs the SSU; .NET needs the CU; the driver and the optional update are not software/offered.
    assert.deepEqual(await searchKeys(s), ['ssu', 'def', 'tool']);

    const notDownloaded = await s.request({ type: 'install', updateIds: [idOf('ssu')] });
    assert.equal(notDownloaded.resultCode, 'failed');
    assert.equal(notDownloaded.hresult, '0x80246007');
    assert.deepEqual(perUpdate(notDownloaded), [['ssu', 'failed', '0x80246007']]);

    const dl = await s.request({ type: 'download', updateIds: [idOf('ssu')] });
    assert.equal(dl.resultCode, 'succeeded');
    const progress = s.events.filter(
      (e) => e.type === 'progress' && e.requestId === dl.requestId && e.phase === 'download',
    );
    assert.ok(progress.length >= 2, 'download progress events');
    const last = progress.at(-1);
    assert.ok(
      last?.type === 'progress' &&
        last.percent === 100 &&
        last.bytes === payloads.info(scenario.byKey.get('ssu')!).size,
    );

    const search2 = await s.request({
      type: 'search',
      criteria: `UpdateID='${idOf('ssu')}'`,
      serverSelection: 'default',
    });
    assert.equal(search2.data?.updates[0]?.isDownloaded, true);

    const ssu = await s.request({ type: 'install', updateIds: [idOf('ssu')] });
    assert.equal(ssu.resultCode, 'succeeded');
    assert.equal(ssu.data?.rebootRequired, false);
    assert.ok(
      s.events.some(
        (e) => e.type === 'progress' && e.requestId === ssu.requestId && e.phase === 'install' && e.percent === 100,
      ),
    );
    assert.deepEqual(await searchKeys(s), ['cu', 'def', 'tool']);

    await s.request({ type: 'download', updateIds: [idOf('cu')] });
    const cu = await s.request({ type: 'install', updateIds: [idOf('cu')] });
    assert.equal(cu.resultCode, 'succeeded');
    assert.equal(cu.data?.rebootRequired, true);
    assert.equal(cu.data?.updates[0]?.rebootRequired, true);
    const status = await s.request({ type: 'rebootStatus' });
    assert.equal(status.data?.rebootRequired, true);
    // .NET waits for the CU's reboot.
    assert.deepEqual(await searchKeys(s), ['def', 'tool']);
    await s.close();

    await completeReboot(dir, new Date('2026-11-21T06:10:00.000Z'));
    const s2 = startSession('web01', dir);
    assert.deepEqual(await searchKeys(s2), ['net', 'def', 'tool']);
    assert.equal((await s2.request({ type: 'rebootStatus' })).data?.rebootRequired, false);
    // The superseded October CU stays installed; installed updates are found with IsInstalled=1.
    assert.deepEqual(await searchKeys(s2, 'IsInstalled=1'), ['ssu', 'cu-old', 'cu']);
    const history = await s2.request({ type: 'history', limit: 2 });
    assert.deepEqual(
      history.data?.entries.map((e) => [keyOf(e.updateId), e.resultCode]),
      [
        ['cu', 'succeeded'],
        ['ssu', 'succeeded'],
      ],
    );
    await s2.close();
  });

  it('installs a batch prerequisites first, and reports results in the caller order', async () => {
    const dir = await hostDir();
    const s = startSession('web01', dir);
    await s.request({ type: 'download', updateIds: [idOf('cu'), idOf('ssu')] });
    const r = await s.request({ type: 'install', updateIds: [idOf('cu'), idOf('ssu')] });
    assert.equal(r.resultCode, 'succeeded');
    assert.deepEqual(perUpdate(r), [
      ['cu', 'succeeded', null],
      ['ssu', 'succeeded', null],
    ]);
    const order = s.events
      .filter((e) => e.type === 'progress' && e.requestId === r.requestId)
      .map((e) => (e.type === 'progress' ? keyOf(e.updateId ?? '') : ''));
    assert.equal(order[0], 'ssu');
    assert.equal(order.at(-1), 'cu');
    await s.close();
  });
});

describe('simulated provider: faults', () => {
  it('pending reboot at start, busy installer, failTimes, failAlways, reappearsAfterInstall', async () => {
    const dir = await hostDir();
    const clock = new TestClock(Date.parse('2026-11-21T06:00:00.000Z'));
    const s = startSession('web02', dir, { clock });
    const status = await s.request({ type: 'rebootStatus' });
    assert.deepEqual(
      { ...status.data, lastBootUpTime: undefined },
      { rebootRequired: true, installerBusy: true, lastBootUpTime: undefined },
    );

    await s.request({ type: 'download', updateIds: [idOf('def'), idOf('ssu'), idOf('cu'), idOf('net'), idOf('drv')] });
    const busy = await s.request({ type: 'install', updateIds: [idOf('def')] });
    assert.equal(busy.resultCode, 'failed');
    assert.equal(busy.hresult, '0x80240016');
    assert.equal(busy.data, undefined);

    clock.t += 30_001; // installerBusySeconds 30000 × timeScale 0.001
    assert.equal((await s.request({ type: 'rebootStatus' })).data?.installerBusy, false);
    // Silent rollback: reported installed, offered again.
    const def = await s.request({ type: 'install', updateIds: [idOf('def')] });
    assert.equal(def.resultCode, 'succeeded');
    assert.ok((await searchKeys(s)).includes('def'));

    // failAlways: every attempt fails with the fault's HRESULT.
    for (let i = 0; i < 2; i++) {
      const drv = await s.request({ type: 'install', updateIds: [idOf('drv')] });
      assert.equal(drv.resultCode, 'failed');
      assert.equal(drv.hresult, '0x800F0922');
    }

    await s.request({ type: 'install', updateIds: [idOf('ssu'), idOf('cu')] });
    await s.close();
    clock.t += 60_000;
    await completeReboot(dir, clock.now());
    const s2 = startSession('web02', dir, { clock });
    // The busy installer re-arms after the boot.
    assert.equal((await s2.request({ type: 'install', updateIds: [idOf('net')] })).hresult, '0x80240016');
    clock.t += 30_001;
    // failTimes 1: the first attempt fails, the retry succeeds.
    const first = await s2.request({ type: 'install', updateIds: [idOf('net')] });
    assert.deepEqual([first.resultCode, first.hresult], ['failed', '0x80242016']);
    const second = await s2.request({ type: 'install', updateIds: [idOf('net'), idOf('def')] });
    assert.equal(second.resultCode, 'succeeded');
    assert.equal(second.data?.rebootRequired, true, 'canRequest updates leave a reboot pending in the lab');
    const history = await s2.request({ type: 'history' });
    assert.deepEqual(
      history.data?.entries.filter((e) => keyOf(e.updateId) === 'net').map((e) => [e.resultCode, e.hresult]),
      [
        ['succeeded', null],
        ['failed', '0x80242016'],
      ],
    );
    await s2.close();
  });

  it('refuses to install an exclusive update with others, accepts its EULA when alone', async () => {
    const s = startSession('web01', await hostDir());
    const before = await s.request({
      type: 'search',
      criteria: `UpdateID='${idOf('tool')}'`,
      serverSelection: 'default',
    });
    assert.equal(before.data?.updates[0]?.eulaAccepted, false);
    assert.equal(before.data?.updates[0]?.impact, 'exclusive');
    await s.request({ type: 'download', updateIds: [idOf('tool'), idOf('def')] });
    const mixed = await s.request({ type: 'install', updateIds: [idOf('tool'), idOf('def')] });
    assert.deepEqual([mixed.resultCode, mixed.hresult], ['failed', '0x80240019']);
    assert.deepEqual(await searchKeys(s, 'IsInstalled=1'), ['cu-old'], 'nothing installed by the refused call');
    const alone = await s.request({ type: 'install', updateIds: [idOf('tool')] });
    assert.equal(alone.resultCode, 'succeeded');
    const installed = await s.request({
      type: 'search',
      criteria: `IsInstalled=1 and UpdateID='${idOf('tool')}'`,
      serverSelection: 'default',
    });
    assert.equal(installed.data?.updates[0]?.eulaAccepted, true);
    await s.close();
  });

  it('reports a mix of success and failure as succeededWithErrors', async () => {
    const clock = new TestClock(Date.parse('2026-11-22T00:00:00.000Z'));
    const s = startSession('web02', await hostDir(), { clock });
    await s.request({ type: 'download', updateIds: [idOf('ssu'), idOf('drv')] });
    clock.t += 30_001; // past the busy installer
    const r = await s.request({ type: 'install', updateIds: [idOf('ssu'), idOf('drv')] });
    assert.equal(r.resultCode, 'succeededWithErrors');
    assert.equal(r.hresult, null);
    assert.deepEqual(perUpdate(r), [
      ['ssu', 'succeeded', null],
      ['drv', 'failed', '0x800F0922'],
    ]);
    await s.close();
  });
});

describe('simulated provider: abort', () => {
  it('aborts a running install: result aborted, the update not installed, the rest not started', async () => {
    const dir = await hostDir();
    const prep = startSession('web01', dir);
    await prep.request({ type: 'download', updateIds: [idOf('ssu'), idOf('def')] });
    await prep.close();
    const clock = new BlockingClock();
    const s = startSession('web01', dir, { clock });
    const install = s.request({ type: 'install', updateIds: [idOf('ssu'), idOf('def')] });
    await clock.sleeping;
    const status = await s.request({ type: 'rebootStatus' });
    assert.equal(status.data?.installerBusy, true, 'the installer is busy while installing');
    const abort = await s.request({ type: 'abort', targetId: 'r1' });
    assert.equal(abort.data?.aborted, true);
    const result = await install;
    assert.equal(result.resultCode, 'aborted');
    assert.deepEqual(perUpdate(result), [
      ['ssu', 'aborted', null],
      ['def', 'notStarted', null],
    ]);
    assert.equal((await s.request({ type: 'abort', targetId: 'r1' })).data?.aborted, false, 'nothing left to abort');
    await s.close();
    const after = startSession('web01', dir);
    assert.deepEqual(await searchKeys(after, 'IsInstalled=1'), ['cu-old']);
    assert.deepEqual(await searchKeys(after), ['ssu', 'def', 'tool']);
    await after.close();
  });

  it('stops when its signal aborts: the running install ends aborted and serveProvider resolves', async () => {
    const dir = await hostDir();
    const prep = startSession('web01', dir);
    await prep.request({ type: 'download', updateIds: [idOf('ssu')] });
    await prep.close();
    const clock = new BlockingClock();
    const controller = new AbortController();
    const input = new PassThrough();
    const output = new PassThrough();
    const lines: string[] = [];
    createInterface({ input: output }).on('line', (l) => lines.push(l));
    const done = serveProvider(input, output, {
      scenario,
      hostName: 'web01',
      hostDir: dir,
      upstreamUrl,
      payloads,
      clock,
      signal: controller.signal,
    });
    input.write(`${JSON.stringify({ id: 'i1', type: 'install', updateIds: [idOf('ssu')] })}\n`);
    input.write(
      `${JSON.stringify({ id: 's1', type: 'search', criteria: 'IsInstalled=0', serverSelection: 'default' })}\n`,
    );
    await clock.sleeping;
    controller.abort();
    await done; // resolves although input never ended
    await new Promise((resolve) => setImmediate(resolve));
    const results = lines.map(parseEvent).filter((e) => e.type === 'result');
    assert.deepEqual(
      results.map((e) => (e.type === 'result' ? [e.requestId, e.resultCode] : [])),
      [
        ['i1', 'aborted'],
        ['s1', 'aborted'],
      ],
    );
  });

  it('returns at once when its signal is already aborted', async () => {
    const output = new PassThrough();
    await serveProvider(new PassThrough(), output, {
      scenario,
      hostName: 'web01',
      hostDir: await hostDir(),
      upstreamUrl,
      payloads,
      signal: AbortSignal.abort(),
    });
    assert.equal(parseEvent(String(output.read()).trim()).type, 'hello');
  });

  it('aborts a running download: the update is not marked downloaded', async () => {
    const dir = await hostDir();
    let started!: () => void;
    const fetching = new Promise<void>((resolve) => (started = resolve));
    const stalled: typeof fetch = (_url, init) => {
      started();
      return new Promise((_resolve, reject) =>
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true }),
      );
    };
    const s = startSession('web01', dir, { fetch: stalled });
    const download = s.request({ type: 'download', updateIds: [idOf('ssu')] });
    await fetching;
    await s.request({ type: 'abort', targetId: 'r1' });
    const result = await download;
    assert.deepEqual([result.resultCode, perUpdate(result)], ['aborted', [['ssu', 'aborted', null]]]);
    const search = await s.request({
      type: 'search',
      criteria: `UpdateID='${idOf('ssu')}'`,
      serverSelection: 'default',
    });
    assert.equal(search.data?.updates[0]?.isDownloaded, false);
    await s.close();
  });
});

describe('simulated provider: errors and other requests', () => {
  it('answers invalid criteria, offline scans and bad request lines', async () => {
    const s = startSession('web01', await hostDir());
    const bad = await s.request({
      type: 'search',
      criteria: "IsInstalled=0 and (IsHidden=0 or Type='Driver')",
      serverSelection: 'default',
    });
    assert.deepEqual([bad.resultCode, bad.hresult, bad.data], ['failed', '0x80240032', undefined]);
    const unknown = await s.request({
      type: 'search',
      criteria: "CategoryIDs contains 'x'",
      serverSelection: 'default',
    });
    assert.equal(unknown.hresult, '0x80240032');
    const missingCab = join(await hostDir(), 'no-such-wsusscn2.cab');
    const offline = await s.request({
      type: 'search',
      criteria: 'IsInstalled=0',
      serverSelection: 'offline',
      offlineCabPath: missingCab,
    });
    assert.deepEqual([offline.resultCode, offline.hresult], ['failed', '0x80070002']);
    assert.match(offline.message ?? '', /cannot be read.*local disk/);
    // rmmagent's inventory query: everything installed plus the needed software.
    assert.deepEqual(await searchKeys(s, "IsInstalled=1 or IsInstalled=0 and Type='Software' and IsHidden=0"), [
      'ssu',
      'def',
      'opt',
      'tool',
      'cu-old',
    ]);
    assert.deepEqual(await searchKeys(s, "Type='Driver'"), ['drv']);
    assert.deepEqual((await s.request({ type: 'install', updateIds: [] })).hresult, '0x80240024');

    s.send('this is not json');
    await s.waitFor((e) => e.type === 'warning');
    s.send('{"id":"x1","type":"install"}');
    const malformed = await s.waitFor((e) => e.type === 'result' && e.requestId === 'x1');
    assert.ok(malformed.type === 'result' && malformed.resultCode === 'failed' && malformed.hresult === '0x80070057');
    await s.close();
  });

  it('fails a download whose digest does not match (0x80246002) or that is not found (0x80244019)', async () => {
    const wrong = createServer((req, res) => {
      if (req.url?.includes('kb5044444')) {
        const size = payloads.info(scenario.byKey.get('ssu')!).size;
        res.writeHead(200, { 'content-length': String(size) }).end(Buffer.alloc(size, 7));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => wrong.listen(0, '127.0.0.1', resolve));
    try {
      const s = startSession('web01', await hostDir(), {
        upstream: `http://127.0.0.1:${(wrong.address() as AddressInfo).port}`,
      });
      const r = await s.request({ type: 'download', updateIds: [idOf('ssu'), idOf('def')] });
      assert.equal(r.resultCode, 'failed');
      assert.equal(r.hresult, '0x80240022');
      assert.deepEqual(perUpdate(r), [
        ['ssu', 'failed', '0x80246002'],
        ['def', 'failed', '0x80244019'],
      ]);
      assert.equal((await s.request({ type: 'install', updateIds: [idOf('ssu')] })).hresult, '0x80246007');
      await s.close();
    } finally {
      wrong.closeAllConnections();
      await new Promise<void>((resolve) => wrong.close(() => resolve()));
    }
  });

  it('fails a download from an upstream nobody listens on with 0x80072EFD and a warning', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const s = startSession('web01', await hostDir(), { upstream: `http://127.0.0.1:${port}` });
    const r = await s.request({ type: 'download', updateIds: [idOf('def')] });
    assert.deepEqual([r.resultCode, r.hresult], ['failed', '0x80072EFD']);
    assert.ok(s.events.some((e) => e.type === 'warning' && e.requestId === r.requestId && e.hresult === '0x80072EFD'));
    await s.close();
  });

  it('hides and unhides, and copyToCache accepts only the right bytes', async () => {
    const dir = await hostDir();
    const s = startSession('web01', dir);
    const hide = await s.request({ type: 'hide', updateIds: [idOf('def')] });
    assert.deepEqual(hide.data?.updates, [{ updateId: idOf('def'), isHidden: true }]);
    assert.deepEqual(await searchKeys(s), ['ssu', 'tool']);
    assert.deepEqual(await searchKeys(s, 'IsHidden=1'), ['def']);
    await s.request({ type: 'unhide', updateIds: [idOf('def')] });
    assert.deepEqual(await searchKeys(s), ['ssu', 'def', 'tool']);

    const good = join(dir, 'ssu.msu');
    const chunks: Buffer[] = [];
    for await (const chunk of payloads.stream(scenario.byKey.get('ssu')!)) chunks.push(chunk as Buffer);
    await writeFile(good, Buffer.concat(chunks));
    const bad = join(dir, 'bad.msu');
    await writeFile(bad, 'not the payload');
    const rejected = await s.request({ type: 'copyToCache', updateId: idOf('ssu'), files: [bad] });
    assert.deepEqual([rejected.resultCode, rejected.hresult], ['failed', '0x80246002']);
    const missing = await s.request({ type: 'copyToCache', updateId: idOf('ssu'), files: [join(dir, 'nope.msu')] });
    assert.equal(missing.hresult, '0x80070002');
    const accepted = await s.request({ type: 'copyToCache', updateId: idOf('ssu'), files: [good] });
    assert.equal(accepted.resultCode, 'succeeded');
    const install = await s.request({ type: 'install', updateIds: [idOf('ssu')] });
    assert.equal(install.resultCode, 'succeeded', 'cached payloads install without a download');
    await s.close();
  });

  it('keeps state across provider restarts on the same host directory', async () => {
    const dir = await hostDir();
    const a = startSession('web01', dir);
    await a.request({ type: 'download', updateIds: [idOf('ssu'), idOf('tool')] });
    await a.request({ type: 'install', updateIds: [idOf('ssu')] });
    await a.request({ type: 'hide', updateIds: [idOf('def')] });
    await a.close();
    const b = startSession('web01', dir);
    assert.deepEqual(await searchKeys(b, 'IsInstalled=1'), ['ssu', 'cu-old']);
    assert.deepEqual(await searchKeys(b, 'IsHidden=1'), ['def']);
    const tool = await b.request({
      type: 'search',
      criteria: `UpdateID='${idOf('tool')}'`,
      serverSelection: 'default',
    });
    assert.equal(tool.data?.updates[0]?.isDownloaded, true);
    await b.close();
  });

  it('rejects an unknown host with a usage error before saying hello', async () => {
    await assert.rejects(
      serveProvider(new PassThrough(), new PassThrough(), {
        scenario,
        hostName: 'nope',
        hostDir: await hostDir(),
        upstreamUrl,
      }),
      (e: Error & { code?: string }) => e.code === 'UNKNOWN_HOST',
    );
  });
});
