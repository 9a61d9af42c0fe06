/**
 * `patchline server` itself: the composition root of a running server. It starts the HTTP server
 * (src/server/server.ts) and wires in what its routes and the agent gateway need from src/catalog
 * and src/content (the server may not import them):
 *  - the catalog: synced from --catalog-source on a schedule (default daily; only if changed) and
 *    on POST /api/v1/catalog/sync; the imported cab is what agents scan against;
 *  - the content cache in DATA/content: fetches what some host needs and may install, serves it
 *    to agents, and is cleaned up on a schedule (default daily, 7 days' grace) and on demand;
 *  - with --lab, the lab (server-lab.ts) and its agents (server-lab-agents.ts).
 * SIGINT/SIGTERM stop the agents, the schedules, the cache and the server, in that order.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { showUpdate } from '../catalog/update-details.ts';
import { MICROSOFT_CATALOG_URL } from '../catalog/sync.ts';
import { usageError } from '../domain/errors.ts';
import { createEnrollToken } from '../server/accounts.ts';
import { REDACT_PATHS } from '../server/app.ts';
import { isLoopback, parseListen, resolveServerConfig, type ServerCliOptions } from '../server/config.ts';
import type { ContentService } from '../server/context.ts';
import { startServer, type RunningServer } from '../server/server.ts';
import { listUsers } from '../store/server/users-repo.ts';
import { parseDuration } from './run-options.ts';
import { createServerCatalog, DEFAULT_CATALOG_SYNC_INTERVAL_MS, type ServerCatalog } from './server-catalog.ts';
import {
  createServerContent,
  CONTENT_PLAN_INTERVAL_MS,
  DEFAULT_CLEANUP_INTERVAL_MS,
  type ServerContent,
} from './server-content.ts';
import { ensureLabAdmin, ensureLabRings, prepareLab, LAB_ADMIN, type Lab } from './server-lab.ts';
import { startLabAgents, type LabAgentMode, type LabAgents } from './server-lab-agents.ts';

/** The lab's enrollment tokens are minted at each start; a day is plenty for the agents to use them. */
const LAB_ENROLL_TOKEN_HOURS = 24;
/** Payload hosts of Microsoft Update (the cache fetches from nowhere else unless --lab). */
const MICROSOFT_CONTENT_HOSTS =
  /(^|\.)(windowsupdate\.com|update\.microsoft\.com|download\.microsoft\.com|delivery\.mp\.microsoft\.com)$/i;
/** Scheduled work is spread ±5 % so replicas and restarts do not hit upstream together. */
const SCHEDULE_JITTER = 0.05;

export interface ServerRunOptions extends ServerCliOptions {
  readonly lab?: string;
  readonly labAgents?: LabAgentMode;
  readonly labTimeScale?: string;
  readonly catalogSource?: string;
  readonly catalogSyncInterval?: string;
  readonly trust?: readonly string[];
  readonly contentGrace?: string;
  readonly contentCleanupInterval?: string;
}

/** A duration option, or null for "off" (no schedule). */
function durationOrOff(flag: string, value: string | undefined, fallback: number): number | null {
  if (value === undefined) return fallback;
  if (value === 'off' || value === '0') return null;
  return parseDuration(flag, value);
}

/** Runs `fn` every `everyMs` (jittered) after a first wait; returns a stopper. */
function every(
  firstMs: number,
  everyMs: number,
  fn: () => Promise<unknown>,
  onError: (error: unknown) => void,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = (ms: number): void => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        fn()
          .catch(onError)
          .finally(() => arm(everyMs * (1 - SCHEDULE_JITTER + Math.random() * 2 * SCHEDULE_JITTER)));
      },
      Math.max(0, ms),
    );
    timer.unref();
  };
  arm(firstMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** The argv that starts this CLI again (lab agents in their own processes). */
export function selfArgv(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** A started server with its services (and its lab): what `runServer` waits on, and what tests drive. */
export interface ServerRun {
  readonly running: RunningServer;
  readonly catalog: ServerCatalog;
  readonly content: ServerContent;
  readonly lab: Lab | undefined;
  readonly agents: LabAgents | undefined;
  /** Stops agents, schedules, cache and server (idempotent). */
  stop(): Promise<void>;
}

/** `patchline server`: starts, prints where it is, runs until SIGINT/SIGTERM. */
export async function runServer(options: ServerRunOptions, cliArgv: readonly string[] = selfArgv()): Promise<void> {
  const run = await startServerRun(options, cliArgv, (line) => process.stdout.write(`${line}\n`));
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      run.running.app.log.info(`${signal}: stopping (agents first, then requests in flight finish)`);
      run.stop().then(resolve, (error: unknown) => {
        run.running.app.log.error({ err: error }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  if (run.lab) process.stdout.write('lab stopped; run the same command with --data to resume it\n');
}

export async function startServerRun(
  options: ServerRunOptions,
  cliArgv: readonly string[],
  out: (line: string) => void,
): Promise<ServerRun> {
  const timeScale = options.labTimeScale === undefined ? undefined : Number(options.labTimeScale);
  if (timeScale !== undefined && !(timeScale > 0))
    throw usageError('USAGE_VALUE', `--lab-time-scale ${options.labTimeScale}: a positive number, e.g. 0.01.`);
  if (!options.lab && (options.labAgents !== undefined || timeScale !== undefined))
    throw usageError('USAGE', '--lab-agents and --lab-time-scale go with --lab SCENARIO.');
  const syncEveryMs = durationOrOff(
    '--catalog-sync-interval',
    options.catalogSyncInterval,
    DEFAULT_CATALOG_SYNC_INTERVAL_MS,
  );
  const graceMs = parseDuration('--content-grace', options.contentGrace ?? '7d');
  const cleanupEveryMs = durationOrOff(
    '--content-cleanup-interval',
    options.contentCleanupInterval,
    DEFAULT_CLEANUP_INTERVAL_MS,
  );
  const trustPems = await Promise.all(
    (options.trust ?? []).map(async (file) => {
      try {
        return await readFile(file, 'utf8');
      } catch (cause) {
        throw usageError(
          'TRUST_CERT_INVALID',
          `Cannot read the --trust certificate ${file}: ${(cause as Error).message}.`,
          { cause },
        );
      }
    }),
  );
  if (options.catalogSource) {
    try {
      new URL(options.catalogSource);
    } catch (cause) {
      throw usageError('USAGE_VALUE', `--catalog-source ${options.catalogSource}: not a URL.`, { cause });
    }
  }

  // A lab gets a fresh data directory unless told where to resume; plain HTTP is fine on loopback.
  const freshLab = options.lab !== undefined && options.data === undefined;
  const data = freshLab ? await mkdtemp(join(tmpdir(), 'patchline-lab-')) : options.data;
  const { host } = parseListen(options.listen ?? '127.0.0.1:8443');
  const insecureHttp = options.insecureHttp || (options.lab !== undefined && !options.tlsCert && isLoopback(host));
  const config = resolveServerConfig({ ...options, ...(data === undefined ? {} : { data }), insecureHttp });

  // Bound once the server runs (the store it opens is theirs too); closures read them late.
  const late: { app?: RunningServer['app']; catalog?: ServerCatalog; content?: ServerContent } = {};
  const log = (message: string, error?: unknown): void => {
    const { app } = late;
    if (app) {
      if (error === undefined) app.log.info(message);
      else app.log.warn({ err: error }, message);
    } else process.stderr.write(`${message}${error ? `: ${(error as Error).message}` : ''}\n`);
  };

  const lab: Lab | undefined = options.lab
    ? await prepareLab({ scenarioPath: options.lab, dataDir: config.dataDir, timeScale, log })
    : undefined;
  const lateContent: ContentService = {
    stats: () => late.content?.stats() ?? { files: 0, bytes: 0, downloading: 0, upstreamBytes: 0, servedBytes: 0 },
    list: () => late.content?.list() ?? [],
    cleanup: () => late.content!.cleanup(),
  };
  const logFile = lab ? join(config.dataDir, 'server.log') : undefined;
  let running: RunningServer;
  try {
    running = await startServer(config, {
      logger: {
        level: 'info',
        redact: { paths: REDACT_PATHS, censor: '[redacted]' },
        ...(logFile ? { file: logFile } : {}),
      },
      catalogDetails: async (db, id) => (await showUpdate(db, id))[0],
      catalog: { sync: (signal) => late.catalog!.sync(signal) },
      content: lateContent,
      cacheStateOf: (id) => late.content?.cacheStateOf(id) ?? 'not-cached',
      agentFiles: {
        catalog: async () => (await late.catalog?.current()) ?? null,
        content: async (digest) => (await late.content?.file(digest)) ?? null,
        updateContent: async (id) => (late.content ? late.content.updateContent(id) : null),
        onContentServed: (bytes) => late.content?.noteServed(bytes),
      },
    });
  } catch (error) {
    await lab?.close();
    throw error;
  }
  late.app = running.app;
  const { store } = running.deps;
  // A local mirror named by --catalog-source may serve the payloads too.
  const sourceOrigin = options.catalogSource ? new URL(options.catalogSource).origin : null;
  const catalog = (late.catalog = createServerCatalog({
    store,
    dir: join(config.dataDir, 'catalog'),
    sourceUrl: lab?.catalogSourceUrl ?? options.catalogSource ?? MICROSOFT_CATALOG_URL,
    trustPems: [...trustPems, ...(lab ? [lab.rootPem] : [])],
    log,
    onUpstreamBytes: (bytes) => running.deps.metrics.upstreamBytes.inc({ source: 'catalog' }, bytes),
  }));
  const content = (late.content = createServerContent({
    store,
    dir: join(config.dataDir, 'content'),
    now: running.deps.now,
    graceMs,
    log,
    onUpstreamBytes: (bytes) => running.deps.metrics.upstreamBytes.inc({ source: 'content' }, bytes),
    allowUrl: lab
      ? lab.allowUrl
      : (url) =>
          (url.protocol === 'https:' || url.protocol === 'http:') &&
          (MICROSOFT_CONTENT_HOSTS.test(url.hostname) || url.origin === sourceOrigin),
  }));
  const unsubscribe = running.deps.feed.subscribe(() => content.planSoon());
  const stops: (() => void)[] = [unsubscribe];
  stops.push(
    every(
      CONTENT_PLAN_INTERVAL_MS,
      CONTENT_PLAN_INTERVAL_MS,
      () => content.plan(),
      (e) => log('content: planning failed', e),
    ),
  );
  if (cleanupEveryMs !== null) {
    stops.push(
      every(
        cleanupEveryMs,
        cleanupEveryMs,
        async () => {
          const r = await content.cleanup();
          log(
            `content cleanup: ${r.deleted.length} file(s) deleted, ${r.bytesFreed} bytes freed, ${r.inGrace} in their grace period`,
          );
        },
        (e) => log('content cleanup failed', e),
      ),
    );
  }
  const syncLog = (r: { message: string }) => log(`catalog sync: ${r.message}`);
  let agents: LabAgents | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await agents?.close().catch((e: unknown) => log('stopping the lab agents failed', e));
      for (const s of stops) s();
      await content.close().catch((e: unknown) => log('closing the content cache failed', e));
      await running.close();
      await lab?.close();
    })());

  try {
    if (syncEveryMs !== null) {
      const lastFile = join(config.dataDir, 'catalog', 'last-sync.json');
      const last = await readFile(lastFile, 'utf8').then(
        (t) => Date.parse((JSON.parse(t) as { at: string }).at),
        () => 0,
      );
      const syncNow = async () => {
        syncLog(await catalog.sync());
        await writeFile(lastFile, `${JSON.stringify({ at: new Date().toISOString() })}\n`);
      };
      const due = Math.max(0, last + syncEveryMs - Date.now());
      // The lab's first sync comes before its agents, so their first scan has the catalog.
      if (lab && due === 0) await syncNow();
      stops.push(
        every(lab && due === 0 ? syncEveryMs : due, syncEveryMs, syncNow, (e) => log('catalog sync failed', e)),
      );
    }
    if (lab) {
      await ensureLabRings(running.deps, lab);
      const password = await ensureLabAdmin(running.deps);
      const agentUrl = new URL(running.url);
      if (!isLoopback(agentUrl.hostname.replace(/^\[|\]$/g, ''))) agentUrl.hostname = '127.0.0.1';
      const tokens = { pilot: '', broad: '' };
      for (const ring of ['pilot', 'broad'] as const) {
        tokens[ring] = (
          await createEnrollToken(
            running.deps,
            { actor: 'lab', ip: null },
            { ring, expiresInHours: LAB_ENROLL_TOKEN_HOURS, singleUse: false, fingerprint: running.fingerprint },
          )
        ).token;
      }
      const mode = options.labAgents ?? 'in-process';
      agents = await startLabAgents({ lab, mode, serverUrl: agentUrl.origin, tokens, cliArgv, log });
      printLabBanner(out, {
        lab,
        url: running.url,
        dataDir: config.dataDir,
        freshLab,
        password,
        logFile: logFile!,
        mode,
        agents: agents.hosts.length,
      });
    } else {
      out(`patchline server listening on ${running.url}`);
      if (running.fingerprint)
        out(`certificate sha256 ${running.fingerprint} (${running.tls?.source}); enrollment tokens carry it`);
      if ((await listUsers(store.db)).length === 0)
        out(
          `no users yet: patchline server user add NAME --role admin${options.data ? ` --data ${options.data}` : ''}`,
        );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { running, catalog, content, lab, agents, stop };
}

function printLabBanner(
  out: (line: string) => void,
  b: {
    lab: Lab;
    url: string;
    dataDir: string;
    freshLab: boolean;
    password: string | null;
    logFile: string;
    mode: LabAgentMode;
    agents: number;
  },
): void {
  const rel = relative(process.cwd(), b.lab.scenarioPath);
  const shown = rel === '' || rel.startsWith('..') ? b.lab.scenarioPath : rel;
  const data = b.dataDir.includes(' ') ? JSON.stringify(b.dataDir) : b.dataDir;
  const pilot = b.lab.scenario.hosts.filter((h) => b.lab.ringOf(h.name) === 'pilot').map((h) => h.name);
  out(`Patchline lab server: ${shown}, ${b.agents} agents (${b.mode}), rings pilot (${pilot.join(', ')}) and broad.`);
  out(`  console:  ${b.url}/`);
  out(
    b.password
      ? `  sign in:  ${LAB_ADMIN} / ${b.password}   (shown once; not in the log)`
      : `  sign in:  ${LAB_ADMIN} with the password shown at the first start (new one: patchline server user passwd ${LAB_ADMIN} --data ${data})`,
  );
  out(`  data:     ${data}${b.freshLab ? '   (a fresh lab; resume it with --data)' : ''}`);
  out(`  log:      ${b.logFile}`);
  out('Nothing is installed until a rule allows it. Allow the security updates for the pilot ring and install them:');
  out(`  TOKEN=$(node bin/patchline.js server token create --name demo --role admin --data ${data})`);
  out(
    `  curl -sH "Authorization: Bearer $TOKEN" -H 'content-type: application/json' ${b.url}/api/v1/rules -d '{"action":"allow","classifications":["Security Updates"],"rings":["pilot"]}'`,
  );
  out(
    `  curl -sH "Authorization: Bearer $TOKEN" -H 'content-type: application/json' ${b.url}/api/v1/actions -d '{"action":"install","ring":"pilot"}'`,
  );
  out(`  curl -sH "Authorization: Bearer $TOKEN" '${b.url}/api/v1/hosts?ring=pilot'`);
  out('Ctrl-C stops the agents and the server.');
}
