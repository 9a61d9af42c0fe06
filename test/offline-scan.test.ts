/**
 * Behaviour test 7: an offline scan in the lab (the signed wsusscn2.cab the lab generates for
 * examples/lab/patch-night.yaml, read back as WUA's AddScanPackageService would) returns the same
 * applicable set as the lab's direct applicability, for every host of the scenario and for every
 * installed state a patch night walks through: initial, after the servicing stack, each install
 * with its reboot pending and done, and after everything. Unsigned, tampered, untrusted and
 * non-cabinet files are refused with WUA's HRESULTs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, link, mkdtemp, open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { memberChunks, openCab, writeCab } from '../src/catalog/cab/index.ts';
import { applicableUpdates } from '../src/lab/applicability.ts';
import { DEFAULT_UPSTREAM_URL } from '../src/lab/catalog-gen-model.ts';
import { generateCatalog, type GenerateResult } from '../src/lab/catalog-gen.ts';
import { defaultCatalogPacker } from '../src/lab/catalog-gen-packer.ts';
import { applyReboot, initialHostState, type HostState } from '../src/lab/host-state.ts';
import {
  createOfflineCatalogCache,
  loadOfflineCatalog,
  offlineApplicable,
  offlineHostOf,
  OfflineScanError,
  searchOfflineCab,
  type OfflineCatalog,
} from '../src/lab/offline-scan.ts';
import { createPayloadStore } from '../src/lab/payloads.ts';
import { loadScenario, type CatalogEntry, type Scenario, type ScenarioHost } from '../src/lab/scenario.ts';
import { serveProvider } from '../src/lab/simulated-provider.ts';
import { hostViewOf, toUpdateRecord } from '../src/lab/update-record.ts';
import type { ProviderEvent, ProviderResult } from '../src/wua/protocol.ts';

const SCENARIO_FILE = new URL('../examples/lab/patch-night.yaml', import.meta.url).pathname;
const NOW = new Date('2026-11-20T22:00:00Z');
/** A patch night never needs more rounds than this; more means the walk loops. */
const MAX_ROUNDS = 10;
/** A search of a small cab is answered in well under a second. */
const PROVIDER_ANSWER_MS = 10_000;

let dir: string;
let scenario: Scenario;
let cab: GenerateResult;
let catalog: OfflineCatalog;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchline-offline-scan-'));
  scenario = await loadScenario(SCENARIO_FILE);
  cab = await generateCatalog(
    scenario,
    { out: join(dir, 'wsusscn2.cab'), rootDir: join(dir, 'root') },
    defaultCatalogPacker(),
  );
  catalog = await loadOfflineCatalog(cab.out, { cache: createOfflineCatalogCache() });
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Installs `entries` as the provider does: an update that reboots waits for its reboot. */
function install(state: HostState, entries: readonly CatalogEntry[]): HostState {
  const installed = { ...state.installed };
  for (const e of entries) installed[e.key] = { installedAt: NOW.toISOString(), rebootDone: e.reboot === 'never' };
  return { ...state, installed, rebootPending: state.rebootPending || entries.some((e) => e.reboot !== 'never') };
}

/** Every installed state a host passes through in a patch night, labelled. */
function patchNight(host: ScenarioHost): { label: string; state: HostState }[] {
  const states: { label: string; state: HostState }[] = [];
  let state = initialHostState(host, NOW, scenario.timeScale);
  states.push({ label: 'initial', state });
  const ssu = applicableUpdates(scenario, host, state).filter((e) => e.key.startsWith('ssu-'));
  assert.equal(ssu.length, 1, `${host.name} is offered its servicing stack first`);
  states.push({ label: 'after the servicing stack', state: install(state, ssu) });
  for (let round = 1; ; round++) {
    assert.ok(round <= MAX_ROUNDS, `${host.name}: the patch night does not end`);
    const next = applicableUpdates(scenario, host, state).filter((e) => !e.optional);
    if (next.length === 0) break;
    state = install(state, next);
    states.push({ label: `round ${round}: installed ${next.map((e) => e.key).join(', ')}, reboot pending`, state });
    state = applyReboot(state, NOW);
    states.push({ label: `round ${round}: rebooted`, state });
  }
  // And the optional preview, which a patch night leaves alone unless asked.
  const optional = applicableUpdates(scenario, host, state);
  if (optional.length > 0)
    states.push({
      label: `after everything, optional ${optional.map((e) => e.key).join(', ')} too`,
      state: applyReboot(install(state, optional), NOW),
    });
  // Hosts built from newer media: the latest CU (or the preview) without the one it supersedes,
  // so supersedence has to hide the old CU, and .NET must wait for the CU it requires.
  const blank = { ...initialHostState(host, NOW, scenario.timeScale), installed: {} };
  for (const newest of scenario.catalog.filter((e) => e.products.includes(host.product) && e.supersedes.length > 0)) {
    const base = install(blank, [...newest.requires.map((k) => scenario.byKey.get(k)!), newest]);
    states.push({ label: `built with ${newest.key} only`, state: applyReboot(base, NOW) });
  }
  return states;
}

describe('offline scan of the lab cab = direct applicability', () => {
  it('reads the signed cab: the lab root beside it is trusted, and every scenario update is reportable', () => {
    assert.equal(catalog.signerSubject, 'CN=Patchline Lab Catalog Signing, O=Patchline Lab');
    assert.deepEqual(
      catalog.updates.map((u) => u.updateId),
      scenario.catalog.map((e) => e.updateId),
    );
    assert.ok(catalog.skipped.categories > 0, 'the category entries are in the cab but never reported');
    assert.deepEqual(catalog.warnings, []);
  });

  it('gives the same set of UpdateIDs for every host of patch-night.yaml in every state of its patch night', () => {
    let compared = 0;
    let nonEmpty = 0;
    for (const host of scenario.hosts) {
      for (const { label, state } of patchNight(host)) {
        const direct = applicableUpdates(scenario, host, state)
          .map((e) => e.updateId)
          .sort();
        const offline = offlineApplicable(catalog, offlineHostOf(scenario, host, state))
          .map((u) => u.updateId)
          .sort();
        assert.deepEqual(offline, direct, `${host.name}, ${label}`);
        compared++;
        if (direct.length > 0) nonEmpty++;
      }
    }
    assert.equal(scenario.hosts.length, 10);
    assert.ok(
      compared >= 10 * 5 && nonEmpty >= 10 * 3,
      `compared ${compared} states, ${nonEmpty} with updates to offer`,
    );
  });

  it('ends a patch night with nothing left to offer, for a 2022 and a 2019 host', () => {
    for (const name of ['web01', 'sql01']) {
      const host = scenario.hostByName.get(name)!;
      const last = patchNight(host)
        .filter((s) => !s.label.startsWith('built'))
        .at(-1)!.state;
      assert.deepEqual(offlineApplicable(catalog, offlineHostOf(scenario, host, last)), [], name);
    }
  });

  it('fills every record field from the cab as the lab provider reports it (the EULA flag aside)', () => {
    const payloads = createPayloadStore(scenario);
    for (const host of [scenario.hostByName.get('web01')!, scenario.hostByName.get('dc01')!]) {
      const state = initialHostState(host, NOW, scenario.timeScale);
      const records = offlineApplicable(catalog, offlineHostOf(scenario, host, state));
      assert.ok(records.length >= 3);
      for (const record of records) {
        const entry = scenario.byId.get(record.updateId)!;
        const expected = toUpdateRecord(
          entry,
          hostViewOf(entry, state),
          { size: payloads.info(entry).size, downloadUrls: [payloads.urlFor(entry, DEFAULT_UPSTREAM_URL)] },
          scenario.byKey,
        );
        assert.deepEqual({ ...record, eulaAccepted: expected.eulaAccepted }, expected, entry.key);
      }
    }
    // Supersedence and the optional flag, on the 2022 preview (supersedes two CUs, BrowseOnly).
    const web01 = scenario.hostByName.get('web01')!;
    const afterSsu = install(initialHostState(web01, NOW, scenario.timeScale), [
      scenario.byKey.get('ssu-2022-2026-11')!,
    ]);
    const preview = offlineApplicable(catalog, offlineHostOf(scenario, web01, afterSsu)).find(
      (u) => u.kbs[0] === '5044449',
    );
    assert.equal(preview?.browseOnly, true);
    assert.deepEqual(
      [...(preview?.supersededUpdateIds ?? [])].sort(),
      ['lcu-2022-2026-10', 'lcu-2022-2026-11'].map((k) => scenario.byKey.get(k)!.updateId).sort(),
    );
  });

  it("answers the provider's offline search with the criteria the agent sends", async () => {
    const host = scenario.hostByName.get('app01')!;
    const state = { ...initialHostState(host, NOW, scenario.timeScale), hidden: ['nic-driver-2026-10'] };
    const result = await searchOfflineCab(
      {
        id: 'r1',
        type: 'search',
        criteria: "IsInstalled=0 and IsHidden=0 and BrowseOnly=0 and Type='Software'",
        serverSelection: 'offline',
        offlineCabPath: cab.out,
      },
      { scenario, host, state, load: { cache: createOfflineCatalogCache() } },
    );
    assert.equal(result.resultCode, 'succeeded');
    const found =
      result.type === 'result' && result.request === 'search' ? result.data?.updates.map((u) => u.updateId) : [];
    assert.deepEqual(
      found,
      ['ssu-2022-2026-11', 'def-2026-11', 'msrt-2026-11'].map((k) => scenario.byKey.get(k)!.updateId),
    );
    const installed = await searchOfflineCab(
      { id: 'r2', type: 'search', criteria: 'IsInstalled=1', serverSelection: 'offline', offlineCabPath: cab.out },
      { scenario, host, state },
    );
    assert.deepEqual(
      installed.type === 'result' && installed.request === 'search' ? installed.data?.updates.map((u) => u.kbs[0]) : [],
      ['5043330'],
    );
  });
});

describe('offline scan through the simulated provider', () => {
  /** Runs one provider session for `hostName` and answers requests, each within a bounded wait. */
  async function withProvider<T>(
    hostName: string,
    fn: (request: (req: Record<string, unknown>) => Promise<ProviderResult>) => Promise<T>,
  ): Promise<T> {
    const input = new PassThrough();
    const output = new PassThrough();
    const hostDir = join(dir, 'hosts', hostName);
    const served = serveProvider(input, output, { scenario, hostName, hostDir, upstreamUrl: 'http://127.0.0.1:9' });
    const waiting = new Map<string, (result: ProviderResult) => void>();
    const lines = createInterface({ input: output });
    lines.on('line', (line) => {
      const event = JSON.parse(line) as ProviderEvent;
      if (event.type === 'result') waiting.get(event.requestId)?.(event);
    });
    let n = 0;
    const request = (req: Record<string, unknown>): Promise<ProviderResult> => {
      const id = `r${++n}`;
      const answered = new Promise<ProviderResult>((resolvePromise) => waiting.set(id, resolvePromise));
      input.write(`${JSON.stringify({ ...req, id })}\n`);
      return Promise.race([
        answered,
        delay(PROVIDER_ANSWER_MS, undefined, { ref: false }).then(() =>
          assert.fail(`no answer to ${String(req.type)} within ${PROVIDER_ANSWER_MS} ms`),
        ),
      ]);
    };
    try {
      return await fn(request);
    } finally {
      input.end();
      await served;
      lines.close();
    }
  }

  it('answers an offline search from the cab with the records its online search gives', async () => {
    const criteria = 'IsInstalled=0 or IsInstalled=1';
    await withProvider('sql02', async (request) => {
      const offline = await request({ type: 'search', criteria, serverSelection: 'offline', offlineCabPath: cab.out });
      const online = await request({ type: 'search', criteria, serverSelection: 'default' });
      const updates = (r: ProviderResult) =>
        r.type === 'result' && r.request === 'search' ? (r.data?.updates ?? []) : [];
      assert.equal(offline.resultCode, 'succeeded', offline.type === 'result' ? offline.message : '');
      assert.ok(updates(online).length >= 4);
      // The cab names Microsoft's file host (it was generated without --upstream), the provider its
      // own upstream: the same files, so compare the paths.
      const comparable = (r: ProviderResult) =>
        updates(r).map((u) => ({
          ...u,
          eulaAccepted: true,
          downloadUrls: u.downloadUrls.map((url) => new URL(url).pathname),
        }));
      assert.deepEqual(comparable(offline), comparable(online));
      const unsigned = await request({
        type: 'search',
        criteria,
        serverSelection: 'offline',
        offlineCabPath: join(dir, 'absent.cab'),
      });
      assert.deepEqual([unsigned.resultCode, unsigned.hresult], ['failed', '0x80070002']);
    });
  });
});

describe('offline scan: WUA refuses scan packages it cannot trust', () => {
  /** Copies the lab cab to `name`, with its lab root beside it unless told otherwise. */
  async function copyCab(name: string, withRoot = true): Promise<string> {
    const file = join(dir, name);
    await copyFile(cab.out, file);
    if (withRoot) await copyFile(cab.rootPemFile, `${file}.root.pem`);
    return file;
  }

  const refused = (code: string, hresult: string) => (error: unknown) => {
    assert.ok(error instanceof OfflineScanError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.hresult, hresult);
    return true;
  };

  it('refuses an unsigned cab with the same content (0x80247001 WU_E_OL_INVALID_SCANFILE)', async () => {
    const signed = await openCab(cab.out);
    const members: { name: string; source: Buffer }[] = [];
    try {
      for (const f of signed.files) {
        const parts: Buffer[] = [];
        for await (const chunk of memberChunks(signed, f)) parts.push(chunk);
        members.push({ name: f.name, source: Buffer.concat(parts) });
      }
    } finally {
      await signed.close();
    }
    const unsigned = join(dir, 'unsigned.cab');
    await writeCab(unsigned, members, { compression: 'none' });
    await copyFile(cab.rootPemFile, `${unsigned}.root.pem`);
    await assert.rejects(
      loadOfflineCatalog(unsigned, { cache: createOfflineCatalogCache() }),
      refused('CATALOG_UNSIGNED', '0x80247001'),
    );
  });

  it('refuses a cab changed after signing (0x80247001)', async () => {
    const file = await copyCab('tampered.cab');
    const handle = await open(file, 'r+');
    try {
      const at = Math.floor((await handle.stat()).size / 3);
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] = (byte[0] as number) ^ 0xff;
      await handle.write(byte, 0, 1, at);
    } finally {
      await handle.close();
    }
    await assert.rejects(
      loadOfflineCatalog(file, { cache: createOfflineCatalogCache() }),
      refused('CATALOG_TAMPERED', '0x80247001'),
    );
  });

  it('refuses a lab cab whose root is not trusted, and accepts it when the root is given', async () => {
    const file = await copyCab('no-root.cab', false);
    await assert.rejects(
      loadOfflineCatalog(file, { cache: createOfflineCatalogCache() }),
      refused('CATALOG_UNTRUSTED', '0x80247001'),
    );
    const besideIgnored = await copyCab('root-ignored.cab');
    await assert.rejects(
      loadOfflineCatalog(besideIgnored, { trustRootBesideCab: false, cache: createOfflineCatalogCache() }),
      refused('CATALOG_UNTRUSTED', '0x80247001'),
    );
    const trusted = await loadOfflineCatalog(file, {
      roots: [await readFile(cab.rootPemFile, 'utf8')],
      cache: createOfflineCatalogCache(),
    });
    assert.equal(trusted.updates.length, scenario.catalog.length);
  });

  it('refuses a missing file (0x80070002) and a file that is not a cabinet (0x80240031)', async () => {
    await assert.rejects(loadOfflineCatalog(join(dir, 'absent.cab')), refused('OFFLINE_CAB_NOT_FOUND', '0x80070002'));
    const html = join(dir, 'error-page.cab');
    await writeFile(html, '<html><body>503 Service Unavailable</body></html>');
    await assert.rejects(
      loadOfflineCatalog(html, { cache: createOfflineCatalogCache() }),
      refused('CATALOG_NOT_CABINET', '0x80240031'),
    );
  });
});

describe('offline catalog cache per path and mtime', () => {
  it('parses a cab once, and again when the file changed', async () => {
    const file = join(dir, 'cached.cab');
    await copyFile(cab.out, file);
    await copyFile(cab.rootPemFile, `${file}.root.pem`);
    const cache = createOfflineCatalogCache();
    const first = await loadOfflineCatalog(file, { cache });
    assert.equal(await loadOfflineCatalog(file, { cache }), first, 'same path and mtime: the parsed catalog is reused');
    const { mtime } = await stat(file);
    const later = new Date(mtime.getTime() + 60_000);
    await utimes(file, later, later);
    const second = await loadOfflineCatalog(file, { cache });
    assert.notEqual(second, first, 'a new mtime means a new catalog');
    assert.deepEqual(
      second.updates.map((u) => u.updateId),
      first.updates.map((u) => u.updateId),
    );
  });

  it('shares one parse between hosts whose directories hold hard links to the same cab', async () => {
    const cache = createOfflineCatalogCache();
    const paths = [join(dir, 'host-a.cab'), join(dir, 'host-b.cab')];
    for (const p of paths) {
      await link(cab.out, p);
      await copyFile(cab.rootPemFile, `${p}.root.pem`);
    }
    const [a, b] = await Promise.all(paths.map((p) => loadOfflineCatalog(p, { cache })));
    assert.equal(a, b);
    assert.equal(cache.size, 1);
  });
});
