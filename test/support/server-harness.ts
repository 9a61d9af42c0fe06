/**
 * Runs a server suite against both stores (STYLE.md §9: interchangeable parts pass one suite):
 * `forEachStore((kind, open) => …)` declares the suite once per dialect — SQLite in a temporary
 * file, PostgreSQL in a fresh database (test/support/postgres.ts) — and `testApp(location)` builds
 * the API over it with a controllable clock and a credential per role.
 */
import { describe } from 'node:test';
import { buildApp, type App } from '../../src/server/app.ts';
import { createApiToken, createEnrollToken } from '../../src/server/accounts.ts';
import { AGENT_PROTOCOL_VERSION } from '../../src/domain/agent-protocol.ts';
import type { ServerDeps } from '../../src/server/context.ts';
import { createEventFeed } from '../../src/server/event-feed.ts';
import { createServerMetrics } from '../../src/server/metrics.ts';
import type { Role } from '../../src/server/auth/roles.ts';
import { openDatabase, type Database_ } from '../../src/store/open.ts';
import { freshLocation, STORE_KINDS, storeSkip, type StoreKind } from './stores.ts';

export { freshLocation, type StoreKind } from './stores.ts';

/** Declares `suite` once per store; PostgreSQL skips (with the reason) only outside CI. */
export function forEachStore(name: string, suite: (kind: StoreKind) => void): void {
  for (const kind of STORE_KINDS) {
    describe(`${name} [${kind}]`, { skip: storeSkip(kind) }, () => suite(kind));
  }
}

export interface TestClock {
  now(): Date;
  set(d: Date): void;
  advance(ms: number): void;
}

export function testClock(start = new Date('2026-03-02T10:00:00Z')): TestClock {
  let t = start.getTime();
  return { now: () => new Date(t), set: (d) => void (t = d.getTime()), advance: (ms) => void (t += ms) };
}

export interface TestApp {
  readonly app: App;
  readonly deps: ServerDeps;
  readonly store: Database_;
  readonly clock: TestClock;
  /** `Authorization` header values, one per role. */
  readonly bearer: Readonly<Record<Role, string>>;
  close(): Promise<void>;
}

export const TEST_ACTOR = { actor: 'test:setup', ip: null };

export async function testApp(kind: StoreKind, overrides: Partial<ServerDeps> = {}): Promise<TestApp> {
  const store = await openDatabase(await freshLocation(kind));
  const clock = testClock();
  const deps: ServerDeps = {
    store,
    now: clock.now,
    secureCookies: false,
    tlsFingerprint: 'ab'.repeat(32),
    feed: createEventFeed(store.db, (error) => console.error(error), 50),
    metrics: createServerMetrics(),
    ...overrides,
  };
  deps.feed.start();
  const app = await buildApp(deps, { logger: false });
  const bearer = {} as Record<Role, string>;
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    bearer[role] = `Bearer ${(await createApiToken(deps, TEST_ACTOR, { name: `test-${role}`, role })).token}`;
  }
  return {
    app,
    deps,
    store,
    clock,
    bearer,
    async close() {
      deps.feed.stop();
      await app.close();
      await store.close();
    },
  };
}

/** An enrollment token for `ring`, made in the store as `patchline server enroll-token create` does. */
export async function enrollToken(t: TestApp, options: { ring?: string; singleUse?: boolean } = {}): Promise<string> {
  const et = await createEnrollToken(t.deps, TEST_ACTOR, {
    ring: options.ring ?? 'pilot',
    expiresInHours: 24,
    singleUse: options.singleUse ?? false,
    fingerprint: null,
  });
  return et.token;
}

/** `POST /api/v1/agent/enroll` as an agent sends it: the raw answer, so tests can assert refusals too. */
export function enrollRequest(t: TestApp, token: string, hostName: string, agentVersion = 'test') {
  return t.app.inject({
    method: 'POST',
    url: '/api/v1/agent/enroll',
    payload: { protocol: AGENT_PROTOCOL_VERSION, token, hostName, agentVersion },
  });
}
