/**
 * A real server for the console tests: SQLite store, the lab catalog of the catalog tests imported
 * (signed, verified), listening on 127.0.0.1 with the built console, users per role, and a fleet
 * of agents that speak the real agent protocol over HTTP (enroll, report, check in, report action
 * progress) — driven by the test, so each step the browser should show is a known moment.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AGENT_PROTOCOL_VERSION } from '../../src/domain/agent-protocol.ts';
import { createEnrollToken, createUser } from '../../src/server/accounts.ts';
import { importCatalogFile } from '../../src/catalog/import-file.ts';
import { defaultCabToolkit } from '../../src/catalog/cab-toolkit.ts';
import { sqliteCatalogWriter } from '../../src/store/catalog-repo.ts';
import { showUpdate } from '../../src/catalog/update-details.ts';
import { makeLabCatalog } from '../catalog-helpers.ts';
import { testApp, TEST_ACTOR, type TestApp } from '../support/server-harness.ts';

export const CONSOLE_BUILT = fileURLToPath(new URL('../../web/dist/index.html', import.meta.url));

export function consoleMissing(): string | null {
  if (existsSync(CONSOLE_BUILT)) return null;
  if (process.env.CI === 'true') throw new Error('web/dist is missing: npm ci builds the console (prepare script)');
  return 'the console is not built (npm run build:web)';
}

export const PASSWORDS = {
  admin: 'admin password 1',
  operator: 'operator password 1',
  viewer: 'viewer password 1',
} as const;

export interface ReportedUpdate {
  readonly key: string;
  readonly applicability?: 'needed' | 'installed';
  readonly failed?: string;
}

export interface ConsoleServer {
  readonly t: TestApp;
  readonly url: string;
  /** Scenario update key → UpdateID and KB. */
  readonly updates: ReadonlyMap<string, { readonly updateId: string; readonly kb: string | null }>;
  enroll(host: string, ring: string): Promise<string>;
  report(host: string, updates: readonly ReportedUpdate[], options?: { rebootPending?: boolean }): Promise<void>;
  /** One agent check-in: the actions waiting for this host and the policy it is given. */
  checkin(host: string): Promise<{ actions: { id: string; action: string }[]; policy: { allowedUpdateIds: string[] } }>;
  progress(host: string, actionId: string, body: Record<string, unknown>): Promise<void>;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

export async function startConsoleServer(): Promise<ConsoleServer> {
  const t = await testApp('sqlite', { catalogDetails: async (db, id) => (await showUpdate(db, id))[0] });
  const lab = await makeLabCatalog();
  const imported = await importCatalogFile(lab.cab.out, sqliteCatalogWriter(t.store.sqlite!), defaultCabToolkit(), {
    trustPems: [readFileSync(lab.cab.rootPemFile, 'utf8')],
  });
  assert.ok(imported.updates > 0);
  for (const role of ['admin', 'operator', 'viewer'] as const)
    await createUser(t.deps, TEST_ACTOR, { name: role, role, password: PASSWORDS[role] });
  const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
  const updates = new Map(
    lab.scenario.catalog.map((e) => [
      e.key,
      { updateId: e.updateId, kb: e.kb === null || e.kb === undefined ? null : String(e.kb) },
    ]),
  );
  const credentials = new Map<string, string>();
  const seq = new Map<string, number>();
  const tokens = new Map<string, string>();
  const agentCall = async (host: string, method: string, url: string, payload: unknown) => {
    const r = await fetch(`${address}${url}`, {
      method,
      headers: { authorization: credentials.get(host)!, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });
    const text = await r.text();
    assert.ok(r.ok, `${url} → ${r.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  return {
    t,
    url: address,
    updates,
    async enroll(host, ring) {
      let token = tokens.get(ring);
      if (!token)
        tokens.set(
          ring,
          (token = (
            await createEnrollToken(t.deps, TEST_ACTOR, {
              ring,
              expiresInHours: 24,
              singleUse: false,
              fingerprint: null,
            })
          ).token),
        );
      const r = await fetch(`${address}/api/v1/agent/enroll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ protocol: AGENT_PROTOCOL_VERSION, token, hostName: host, agentVersion: 'console-test' }),
      });
      assert.equal(r.status, 201, await r.clone().text());
      credentials.set(host, `Bearer ${((await r.json()) as { credential: string }).credential}`);
      return host;
    },
    async report(host, list, options = {}) {
      const n = (seq.get(host) ?? 0) + 1;
      seq.set(host, n);
      const at = t.clock.now().toISOString();
      await agentCall(host, 'POST', '/api/v1/agent/reports', {
        protocol: AGENT_PROTOCOL_VERSION,
        seq: n,
        baseSeq: null,
        scannedAt: at,
        source: 'online',
        catalogSha256: null,
        rebootPending: options.rebootPending ?? false,
        updates: list.map((u) => {
          const known = updates.get(u.key);
          assert.ok(known, `no scenario update ${u.key}`);
          return {
            updateId: known.updateId,
            revisionNumber: 1,
            kbs: known.kb ? [known.kb] : [],
            applicability: u.applicability ?? 'needed',
            downloaded: false,
            lastAttempt: u.failed
              ? { phase: 'install', resultCode: 'failed', hresult: u.failed, attempts: 1, at }
              : null,
          };
        }),
        removed: [],
      });
    },
    async checkin(host) {
      return (await agentCall(host, 'POST', '/api/v1/agent/checkin', {
        protocol: AGENT_PROTOCOL_VERSION,
        waitSeconds: 0,
        agentVersion: 'console-test',
      })) as never;
    },
    async progress(host, actionId, body) {
      await agentCall(host, 'POST', `/api/v1/agent/actions/${actionId}/progress`, {
        protocol: AGENT_PROTOCOL_VERSION,
        at: t.clock.now().toISOString(),
        ...body,
      });
    },
    async api(method, path, body) {
      const r = await t.app.inject({
        method: method as 'GET',
        url: `/api/v1${path}`,
        headers: { authorization: t.bearer.admin },
        ...(body === undefined ? {} : { payload: body as object }),
      });
      assert.ok(r.statusCode < 300, `${method} ${path} → ${r.statusCode} ${r.body}`);
      return (r.body ? r.json() : undefined) as never;
    },
    close: () => t.close(),
  };
}
