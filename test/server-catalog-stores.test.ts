/**
 * `patchline server --lab examples/lab/small.yaml` on either store — `--data DIR` (SQLite) or
 * `--db postgres://…` — syncs the lab's signed catalog from the lab upstream, imports it, serves
 * the cab its agents scan against, and answers the catalog through the API: the catalog status,
 * the updates grid with the catalog's titles, classifications and products, each update's page
 * with its prerequisites, title search. Everything but ids and times is the same on
 * PostgreSQL as on SQLite; a sync on request with the catalog unchanged imports nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServerRun, type ServerRun } from '../src/cli/server-run.ts';
import { createApiToken } from '../src/server/accounts.ts';
import { freshLocation, STORE_KINDS, storeSkip, type StoreKind } from './support/stores.ts';
import { until } from './support/until.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SCENARIO = join(ROOT, 'examples/lab/small.yaml');
const CLI = [process.execPath, join(ROOT, 'bin/patchline.js')];
const SCANS_TIMEOUT_MS = 60_000;
const SYNC_TIMEOUT_MS = 30_000;

/** Ids, versions, times and the data directory differ between two runs; everything else must not. */
function withoutRunFacts(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutRunFacts);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !/^(id|versionId|source)$|At$/.test(k))
      .map(([k, v]) => [k, withoutRunFacts(v)]),
  );
}

interface CatalogView {
  readonly catalog: { current: { id: number; updates: number; signerSubject: string | null } | null };
  readonly updates: { updateId: string; kb: string | null; title: string | null; inCatalog: boolean }[];
  readonly pages: Record<string, { title: string | null; inCatalog: boolean; prerequisites: { kb: string | null }[] }>;
  readonly search: unknown;
}

/** Runs the lab server on `kind` until every host reported a scan, and reads the catalog through the API. */
async function catalogThroughApi(kind: StoreKind): Promise<CatalogView> {
  const data = await mkdtemp(join(tmpdir(), 'patchline-server-catalog-'));
  const db = kind === 'postgres' ? await freshLocation(kind) : undefined;
  let run: ServerRun | undefined;
  const lines: string[] = [];
  try {
    run = await startServerRun(
      {
        lab: SCENARIO,
        data,
        ...(db ? { db } : {}),
        listen: '127.0.0.1:0',
        labAgents: 'in-process',
        labTimeScale: '0.005',
      },
      CLI,
      (l) => lines.push(l),
    );
    const { running, lab } = run;
    assert.ok(lab);
    assert.equal(running.deps.store.dialect, kind);
    const token = (await createApiToken(running.deps, { actor: 'test', ip: null }, { name: 'test', role: 'admin' }))
      .token;
    const api = async <T>(method: 'GET' | 'POST', path: string): Promise<T> => {
      const r = await running.app.inject({
        method,
        url: `/api/v1${path}`,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.ok(r.statusCode < 300, `${method} ${path} → ${r.statusCode} ${r.body}\n${lines.join('\n')}`);
      return r.json() as T;
    };
    type Hosts = { hosts: { name: string; lastScanAt: string | null }[] };
    let hosts: Hosts = { hosts: [] };
    await until(
      `every lab host to report a scan against the served catalog [${kind}]`,
      SCANS_TIMEOUT_MS,
      async () => {
        hosts = await api<Hosts>('GET', '/hosts');
        return hosts.hosts.length === lab.scenario.hosts.length && hosts.hosts.every((h) => h.lastScanAt)
          ? true
          : undefined;
      },
      () => `${JSON.stringify(hosts.hosts)}\n${lines.join('\n')}`,
    );
    const served = await run.catalog.current();
    assert.match(served?.sha256 ?? '', /^[0-9a-f]{64}$/, 'the imported cab is the one served to agents');
    const catalog = await api<CatalogView['catalog']>('GET', '/catalog');
    const { updates } = await api<{ updates: CatalogView['updates'] }>('GET', '/updates?sort=kb');
    const pages: CatalogView['pages'] = {};
    // Every update of the scenario has a page, reported by a host or known from the catalog only.
    for (const e of lab.scenario.catalog) pages[e.kb ?? e.updateId] = await api('GET', `/updates/${e.updateId}`);
    const search = await api('GET', '/updates?q=servicing&sort=kb');

    // A sync on request: the upstream did not change, so the same version stays current.
    assert.equal((await api<{ started: boolean }>('POST', '/catalog/sync')).started, true);
    type Status = { current: { id: number } | null; syncing: boolean };
    let after: Status = { current: null, syncing: true };
    await until(
      `the requested catalog sync to finish [${kind}]`,
      SYNC_TIMEOUT_MS,
      async () => ((after = await api<Status>('GET', '/catalog')).syncing ? undefined : true),
      () => JSON.stringify(after),
    );
    assert.equal(after.current?.id, catalog.current?.id, 'an unchanged catalog is not imported again');
    return { catalog, updates, pages, search };
  } finally {
    await run?.stop();
    await rm(data, { recursive: true, force: true });
  }
}

const seen = new Map<StoreKind, CatalogView>();

for (const kind of STORE_KINDS) {
  test(
    `server --lab [${kind}]: the catalog is synced, imported, served to the agents and read through the API`,
    {
      skip: storeSkip(kind),
      timeout: 120_000,
    },
    async () => {
      const view = await catalogThroughApi(kind);
      seen.set(kind, view);
      assert.ok(view.catalog.current, 'a current catalog');
      assert.match(view.catalog.current.signerSubject ?? '', /Patchline Lab/, 'the signature was checked');
      assert.ok(view.catalog.current.updates > 0);
      const ssu = view.updates.find((u) => u.kb === '5044444');
      assert.ok(ssu?.inCatalog, `the SSU is reported and known to the catalog: ${JSON.stringify(view.updates)}`);
      assert.match(ssu.title ?? '', /Servicing Stack Update/);
      const cu = view.pages['5044445'];
      assert.ok(cu?.inCatalog, 'the CU no host needs yet has its page from the catalog');
      assert.match(cu.title ?? '', /Cumulative Update/);
      assert.ok(
        cu.prerequisites.some((p) => p.kb === '5044444'),
        `the CU's page names the SSU as its prerequisite: ${JSON.stringify(cu.prerequisites)}`,
      );
      const found = (view.search as { updates: { kb: string | null }[] }).updates.map((u) => u.kb);
      assert.deepEqual(found, ['5044444'], 'search by title words');
      const sqlite = seen.get('sqlite');
      if (kind === 'postgres' && sqlite) {
        assert.deepEqual(withoutRunFacts(view), withoutRunFacts(sqlite), 'PostgreSQL answers as SQLite does');
      }
    },
  );
}
