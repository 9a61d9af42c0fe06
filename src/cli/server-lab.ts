/**
 * `patchline server --lab SCENARIO`: everything a lab server needs besides the server itself —
 *  - the lab's fake upstream: the scenario's payloads (deterministic bytes, Microsoft-shaped URLs)
 *    and a signed lab wsusscn2.cab at Microsoft's path, both on 127.0.0.1;
 *  - the lab root the cab is signed with, trusted by this server and its lab agents only;
 *  - two rings (pilot: the first host of each product; broad: the rest), always inside their
 *    maintenance window, with nothing allowed — nothing is installed until a rule allows it;
 *  - the admin user, with a random password printed once;
 *  - one enrolled agent per scenario host (server-lab-agents.ts).
 * DATA/lab/lab.json remembers the scenario and the upstream's port, so re-running with the same
 * --data resumes the same lab: same catalog, same enrolled hosts, same admin.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { usageError } from '../domain/errors.ts';
import { DEFAULT_RING, validateRing, type Ring } from '../domain/policy/index.ts';
import { defaultCatalogPacker } from '../lab/catalog-gen-packer.ts';
import { generateCatalog } from '../lab/catalog-gen.ts';
import { startCatalogUpstream, type CatalogUpstream } from '../lab/catalog-upstream.ts';
import { createPayloadStore, type PayloadStore } from '../lab/payloads.ts';
import { loadScenario, type Scenario } from '../lab/scenario.ts';
import { createUser } from '../server/accounts.ts';
import { commitChange } from '../server/changes.ts';
import type { ServerDeps } from '../server/context.ts';
import { findUser } from '../store/server/users-repo.ts';

export const LAB_ADMIN = 'admin';
const LAB_ACTOR = { actor: 'lab', ip: null };
/** Lab rings are always in their window: what a rule allows goes in at once (a real ring has nights). */
const ALWAYS = [
  {
    weekdays: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const,
    start: '00:00',
    durationMinutes: 1440,
    timeZone: 'UTC',
  },
];
/** The lab's scans are hourly (the least a ring allows); installs rescan on their own. */
const LAB_SCAN_INTERVAL_MINUTES = 60;

interface LabFile {
  readonly scenario: string;
  /** The payload upstream's port, which the generated catalog's URLs name. */
  readonly payloadPort: number;
}

export interface Lab {
  readonly scenario: Scenario;
  readonly scenarioPath: string;
  /** DATA/lab: the upstream's files, the hosts' WUA state and their agents' state. */
  readonly dir: string;
  /** Where the server syncs its catalog from (the fake upstream at Microsoft's path). */
  readonly catalogSourceUrl: string;
  readonly payloadUpstreamUrl: string;
  readonly rootPem: string;
  readonly rootPemFile: string;
  readonly payloads: PayloadStore;
  /** Payload GETs the upstream answered (each one a download from "Microsoft"). */
  readonly payloadRequests: () => number;
  /** Ring of each host: pilot for the first host of each product, broad for the rest. */
  readonly ringOf: (host: string) => 'pilot' | 'broad';
  /** The cache may fetch from the lab upstream only. */
  readonly allowUrl: (url: URL) => boolean;
  close(): Promise<void>;
}

async function readLabFile(path: string): Promise<LabFile | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LabFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw usageError(
      'LAB_STATE_UNREADABLE',
      `${path} is not readable lab state (${(error as Error).message}): use a fresh --data directory.`,
      { cause: error },
    );
  }
}

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** The payload upstream, on its earlier port when it is free (the catalog names it), else a new one. */
async function startPayloadUpstream(
  payloads: PayloadStore,
  preferredPort: number,
  counter: { n: number },
): Promise<{ server: Server; port: number }> {
  const make = () =>
    createServer((req, res) => {
      if (req.method === 'GET') counter.n++;
      if (!payloads.handle(req, res)) res.writeHead(404).end();
    });
  if (preferredPort > 0) {
    const server = make();
    try {
      return { server, port: await listen(server, preferredPort) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      server.close();
    }
  }
  const server = make();
  return { server, port: await listen(server, 0) };
}

export interface PrepareLabOptions {
  readonly scenarioPath: string;
  readonly dataDir: string;
  /** Overrides the scenario's timeScale (smaller: quicker installs and reboots). */
  readonly timeScale?: number;
  readonly log: (message: string) => void;
}

export async function prepareLab(options: PrepareLabOptions): Promise<Lab> {
  const scenarioPath = resolve(options.scenarioPath);
  const loaded = await loadScenario(scenarioPath);
  const scenario: Scenario = options.timeScale === undefined ? loaded : { ...loaded, timeScale: options.timeScale };
  const dir = join(options.dataDir, 'lab');
  await mkdir(join(dir, 'upstream'), { recursive: true });
  const labFile = join(dir, 'lab.json');
  const previous = await readLabFile(labFile);
  if (previous && previous.scenario !== scenarioPath) {
    throw usageError(
      'LAB_SCENARIO_MISMATCH',
      `${options.dataDir} holds the lab of ${previous.scenario}, not ${scenarioPath}: use another --data directory (or the same scenario).`,
    );
  }
  const payloads = createPayloadStore(scenario);
  const counter = { n: 0 };
  const upstream = await startPayloadUpstream(payloads, previous?.payloadPort ?? 0, counter);
  const payloadUpstreamUrl = `http://127.0.0.1:${upstream.port}`;
  let catalogUpstream: CatalogUpstream | undefined;
  try {
    const cab = join(dir, 'upstream', 'wsusscn2.cab');
    const rootPemFile = `${cab}.root.pem`;
    const haveCab = await stat(cab).then(
      () => true,
      () => false,
    );
    // The catalog's payload URLs name the upstream's port: a new port needs a new catalog (the
    // server's sync then sees a changed cab and imports it).
    if (!haveCab || previous?.payloadPort !== upstream.port) {
      options.log(`lab: generating the signed lab catalog of ${scenario.catalog.length} updates`);
      await generateCatalog(
        scenario,
        { out: cab, upstreamUrl: payloadUpstreamUrl, rootDir: join(dir, 'root') },
        defaultCatalogPacker(),
      );
    }
    await writeFile(
      `${labFile}.tmp`,
      `${JSON.stringify({ scenario: scenarioPath, payloadPort: upstream.port } satisfies LabFile)}\n`,
    );
    await rename(`${labFile}.tmp`, labFile);
    catalogUpstream = await startCatalogUpstream({ file: cab });
    const rootPem = await readFile(rootPemFile, 'utf8');

    const firstOfProduct = new Set<string>();
    const seen = new Set<string>();
    for (const h of scenario.hosts) {
      if (seen.has(h.product)) continue;
      seen.add(h.product);
      firstOfProduct.add(h.name);
    }
    const origin = new URL(payloadUpstreamUrl).origin;
    const catalogUp = catalogUpstream;
    return {
      scenario,
      scenarioPath,
      dir,
      catalogSourceUrl: catalogUp.url,
      payloadUpstreamUrl,
      rootPem,
      rootPemFile,
      payloads,
      payloadRequests: () => counter.n,
      ringOf: (host) => (firstOfProduct.has(host) ? 'pilot' : 'broad'),
      allowUrl: (url) => url.origin === origin,
      async close() {
        upstream.server.closeAllConnections();
        await new Promise<void>((done) => upstream.server.close(() => done()));
        await catalogUp.close();
      },
    };
  } catch (error) {
    upstream.server.close();
    await catalogUpstream?.close();
    throw error;
  }
}

/** The lab's rings, created once (an administrator's later changes are kept on a re-run). */
export async function ensureLabRings(deps: Pick<ServerDeps, 'store' | 'now' | 'feed'>, lab: Lab): Promise<void> {
  const existing = await deps.store.db.selectFrom('rings').select('name').execute();
  if (existing.length > 0) return;
  const pilot = lab.scenario.hosts.filter((h) => lab.ringOf(h.name) === 'pilot').map((h) => h.name);
  const rings: Ring[] = [
    {
      ...DEFAULT_RING,
      name: 'pilot',
      members: pilot,
      maintenanceWindows: ALWAYS,
      scanIntervalMinutes: LAB_SCAN_INTERVAL_MINUTES,
    },
    {
      ...DEFAULT_RING,
      name: 'broad',
      members: [],
      maintenanceWindows: ALWAYS,
      scanIntervalMinutes: LAB_SCAN_INTERVAL_MINUTES,
    },
  ];
  const at = deps.now().toISOString();
  for (const [position, ring] of rings.entries()) {
    const problems = validateRing(ring);
    if (problems.length > 0)
      throw new Error(
        `lab ring ${ring.name} is not valid: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      );
    const { name, ...spec } = ring;
    await commitChange(deps, LAB_ACTOR, async (trx, record) => {
      await trx
        .insertInto('rings')
        .values({ name, position, spec_json: JSON.stringify(spec), updated_at: at, updated_by: LAB_ACTOR.actor })
        .execute();
      await record({
        action: 'ring.create',
        target: name,
        details: { lab: true },
        event: { kind: 'ring.updated', data: { ring: name } },
      });
    });
  }
}

/** Creates the lab's admin on the first start; returns its password (shown once), or null when it exists. */
export async function ensureLabAdmin(deps: Pick<ServerDeps, 'store' | 'now' | 'feed'>): Promise<string | null> {
  if (await findUser(deps.store.db, LAB_ADMIN)) return null;
  const password = randomBytes(15).toString('base64url');
  await createUser(deps, LAB_ACTOR, { name: LAB_ADMIN, role: 'admin', password });
  return password;
}
