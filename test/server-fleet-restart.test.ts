/**
 * Behaviour 9: the server is killed with SIGKILL mid-download and mid-install, then restarted with
 * the same --data. A real `patchline server` process (SQLite in --data) syncs a signed lab catalog
 * from a fake upstream in this process; the agents run outside it, as a lab fleet in this process
 * over real HTTP.
 *  - mid-download: the upstream sends half of the cumulative update's payload and then holds the
 *    response; the server is killed once bytes are on its disk. After the restart the content
 *    cache resumes with Range from what it had, and ends with the file verified.
 *  - mid-install: an install action (acknowledged with 202) runs on both hosts; the server is
 *    killed while a host installs. The agents keep working, queue their progress and reports on
 *    disk, reconnect to the restarted server, and every host ends patched and rebooted, as the
 *    server's API shows; the ring, the action and its audit entries survived both kills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCatalogPacker } from '../src/lab/catalog-gen-packer.ts';
import { generateCatalog } from '../src/lab/catalog-gen.ts';
import { startLabFleet, type LabFleet } from '../src/lab/fleet.ts';
import { readHostState } from '../src/lab/host-state.ts';
import { createPayloadStore } from '../src/lab/payloads.ts';
import { parseScenario } from '../src/lab/scenario.ts';
import { createApiToken, createEnrollToken } from '../src/server/accounts.ts';
import { openDatabase } from '../src/store/open.ts';
import { start, type Started } from './cli-helpers.ts';

const SCENARIO = `
timeScale: 0.05
payloadScale: 0.002
catalog:
  - { key: ssu, kb: 5060001, title: Servicing Stack Update (KB5060001), classification: Security Updates, severity: Critical, products: [Windows Server 2022], reboot: never, installSeconds: 20, sizeMB: 10, released: 2026-02-10 }
  - { key: cu, kb: 5060002, title: Cumulative Update (KB5060002), classification: Security Updates, severity: Critical, products: [Windows Server 2022], reboot: always, installSeconds: 120, sizeMB: 600, released: 2026-02-10 }
hosts:
  - { name: "web{01..02}", product: Windows Server 2022, rebootSeconds: 60 }
`;

async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const probe = createNetServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

test(
  'SIGKILL mid-download and mid-install: the restarted server resumes the download, agents reconnect, nothing acknowledged is lost',
  { timeout: 240_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-kill9-'));
    const data = join(dir, 'data');
    const scenario = parseScenario(SCENARIO, 'kill9.yaml');
    const payloads = createPayloadStore(scenario);
    const cuInfo = payloads.info(scenario.byKey.get('cu')!);

    // The upstream: the catalog cab and the payloads; the first GET of the CU's payload sends half and holds.
    const cuRequests: { range: string | undefined; status: number }[] = [];
    const cab: { path?: string } = {};
    let holding: ServerResponse | undefined;
    const upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/wsusscn2.cab' && cab.path) {
        void readFile(cab.path).then((bytes) =>
          res
            .writeHead(200, {
              'content-type': 'application/vnd.ms-cab-compressed',
              'content-length': bytes.length,
              etag: '"lab-cab"',
              'last-modified': new Date(0).toUTCString(),
            })
            .end(req.method === 'HEAD' ? undefined : bytes),
        );
        return;
      }
      if (path.endsWith(cuInfo.path) && req.method === 'GET') {
        cuRequests.push({ range: req.headers.range, status: req.headers.range ? 206 : 200 });
        if (cuRequests.length === 1) {
          const half = Math.floor(cuInfo.size / 2);
          res.writeHead(200, {
            etag: `"${cuInfo.sha256}"`,
            'accept-ranges': 'bytes',
            'content-type': 'application/octet-stream',
            'content-length': String(cuInfo.size),
          });
          payloads
            .stream(cuInfo.entry, 0, half - 1)
            .on('end', () => (holding = res))
            .pipe(res, { end: false });
          return;
        }
      }
      if (!payloads.handle(req, res)) res.writeHead(404).end();
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const generated = await generateCatalog(
      scenario,
      { out: join(dir, 'wsusscn2.cab'), upstreamUrl, rootDir: join(dir, 'root') },
      defaultCatalogPacker(),
    );
    cab.path = generated.out;

    const port = await freePort();
    const serverUrl = `http://127.0.0.1:${port}`;
    const serverArgs = [
      'server',
      '--data',
      data,
      '--listen',
      `127.0.0.1:${port}`,
      '--insecure-http',
      '--catalog-source',
      `${upstreamUrl}/wsusscn2.cab`,
      '--trust',
      generated.rootPemFile,
    ];
    let server: Started | undefined;
    const startServer = async (): Promise<Started> => {
      const s = start(serverArgs);
      await Promise.race([
        s.line(/listening on/),
        s.done.then((r) => Promise.reject(new Error(`the server exited (${r.code ?? r.signal}): ${r.stderr}`))),
      ]);
      return s;
    };
    const kill9 = async (): Promise<void> => {
      const s = server!;
      server = undefined;
      s.child.kill('SIGKILL');
      const ran = await s.done;
      assert.equal(ran.signal, 'SIGKILL');
    };
    // Tokens are made as `patchline server token create --data` makes them: on the store, while the
    // server runs (the same accounts.ts functions; a CLI start per token would cost seconds here).
    const withStore = async <T>(
      work: (deps: { store: Awaited<ReturnType<typeof openDatabase>>; now: () => Date }) => Promise<T>,
    ): Promise<T> => {
      const store = await openDatabase(join(data, 'server.sqlite'));
      try {
        return await work({ store, now: () => new Date() });
      } finally {
        await store.close();
      }
    };
    let fleet: LabFleet | undefined;
    try {
      server = await startServer();
      const admin = `Bearer ${(await withStore((deps) => createApiToken(deps, { actor: 'test', ip: null }, { name: 'kill9', role: 'admin' }))).token}`;
      const api = async (method: string, url: string, body?: unknown) => {
        const res = await fetch(`${serverUrl}${url}`, {
          method,
          headers: { authorization: admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      };
      const ring = await api('PUT', '/api/v1/rings/pilot', { defaultAllow: true, rebootPolicy: 'if-required' });
      assert.equal(ring.status, 200, JSON.stringify(ring.body));
      const enrollToken = (
        await withStore((deps) =>
          createEnrollToken(
            deps,
            { actor: 'test', ip: null },
            { ring: 'pilot', expiresInHours: 24, singleUse: false, fingerprint: null },
          ),
        )
      ).token;
      await until(async () => (await api('GET', '/api/v1/catalog')).body.current, 60_000, 'the first catalog sync');

      fleet = await startLabFleet({
        scenario,
        dir: join(dir, 'lab'),
        serverUrl,
        enrollToken,
        upstreamUrl,
        payloads,
        labRootPem: await readFile(generated.rootPemFile, 'utf8'),
        checkinWaitSeconds: 2,
        // Jitter at a tenth of its range: the agents retry the dead server sooner, the backoff still doubles.
        random: () => 0.1,
        ...(process.env.FLEET_DEBUG
          ? { log: (m: string) => console.error(`${new Date().toISOString().slice(11, 23)} ${m}`) }
          : {}),
      });

      // ── mid-download ──
      // The hosts report; the ring allows both updates; the server fetches their payloads, the CU's stalls halfway.
      const partialDir = join(data, 'content', 'partial');
      const partialBytes = async (): Promise<number> => {
        const names = await readdir(partialDir).catch(() => [] as string[]);
        const sizes = await Promise.all(
          names
            .filter((n) => !n.endsWith('.json'))
            .map((n) =>
              stat(join(partialDir, n)).then(
                (s) => s.size,
                () => 0,
              ),
            ),
        );
        return Math.max(0, ...sizes);
      };
      const half = Math.floor(cuInfo.size / 2);
      await until(
        async () => holding !== undefined && (await partialBytes()) === half,
        60_000,
        "the server to have half of the CU's payload on disk",
      );
      const killedAt = Date.now();
      await kill9();
      holding?.destroy();
      server = await startServer();
      const restartedAt = new Date().toISOString();
      await until(
        async () => {
          const content = (await api('GET', '/api/v1/content')).body;
          return content.files === 2 && content.downloading === 0;
        },
        60_000,
        "both payloads in the restarted server's cache",
      );
      assert.equal(cuRequests.length, 2, "the CU's payload was asked for twice: before the kill and once to resume");
      assert.equal(cuRequests[1]!.range, `bytes=${half}-`, 'the download resumed from the bytes on disk');

      // Both agents reconnected to the restarted server. Their retries back off exponentially while
      // the server is down, so the next one may come as late as the outage was long (a loaded
      // machine restarts slowly): the bound grows with it.
      const reconnectMs = 60_000 + 2 * (Date.now() - killedAt);
      await until(
        async () =>
          (await api('GET', '/api/v1/hosts')).body.hosts.filter(
            (h: { lastSeenAt: string | null }) => h.lastSeenAt && h.lastSeenAt > restartedAt,
          ).length === 2,
        reconnectMs,
        'both agents to check in with the restarted server',
      );

      // ── mid-install ──
      const action = await api('POST', '/api/v1/actions', { action: 'install', ring: 'pilot' });
      assert.equal(action.status, 202, JSON.stringify(action.body));
      const actionId = action.body.id as string;
      await until(
        async () =>
          (await api('GET', `/api/v1/actions/${actionId}`)).body.hosts.some(
            (h: { phase: string | null; state: string }) => h.state === 'running' && h.phase === 'install',
          ),
        60_000,
        'a host to be installing',
      );
      await kill9();
      server = await startServer();

      const done = await until(
        async () => {
          const detail = (await api('GET', `/api/v1/actions/${actionId}`)).body;
          return detail.state === 'done' || detail.state === 'failed' ? detail : undefined;
        },
        120_000,
        'the install action to finish after the restart',
      );
      assert.deepEqual(done.hosts.map((h: { host: string; state: string }) => [h.host, h.state]).sort(), [
        ['web01', 'succeeded'],
        ['web02', 'succeeded'],
      ]);
      for (const name of ['web01', 'web02']) {
        const hostState = await until(
          async () => {
            const s = await readHostState(join(dir, 'lab', 'hosts', name));
            return s && s.installed.cu?.rebootDone && s.installed.ssu ? s : undefined;
          },
          60_000,
          `${name} to be patched and rebooted`,
        );
        assert.deepEqual(Object.keys(hostState.installed).sort(), ['cu', 'ssu']);
        const view = await until(
          async () => {
            const h = (await api('GET', `/api/v1/hosts?q=${name}`)).body.hosts[0];
            return h && h.counts.OK === 2 && !h.rebootPending ? h : undefined;
          },
          60_000,
          `the server to show ${name} with both updates installed and no reboot pending`,
        );
        assert.deepEqual(view.counts, { OK: 2, MISSING: 0, PENDING: 0, DISCARDED: 0 });
      }
      const audit = (await api('GET', '/api/v1/audit')).body.entries.map((e: { action: string }) => e.action);
      for (const entry of ['token.create', 'ring.create', 'enroll-token.create', 'action.create'])
        assert.ok(audit.includes(entry), `the audit kept ${entry}: ${audit.join(', ')}`);
    } finally {
      await fleet?.close();
      if (server) {
        server.child.kill('SIGTERM');
        await server.done;
      }
      upstream.closeAllConnections();
      upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
