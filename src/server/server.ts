/**
 * The listening server: opens the store, settles the TLS identity, builds the app and listens.
 * `close()` is idempotent and drains: new connections are refused, requests in flight finish
 * (up to SHUTDOWN_DEADLINE_MS), event streams end, then the store closes. Every write is
 * committed before its 2xx, so a `kill -9` instead loses nothing that was acknowledged.
 */
import type { FastifyServerOptions } from 'fastify';
import { appDeps, buildApp, REDACT_PATHS, type App, type BuildAppOptions } from './app.ts';
import type { CatalogService, ServerDeps } from './context.ts';
import { SHUTDOWN_DEADLINE_MS, type ServerConfig } from './config.ts';
import { createEventFeed } from './event-feed.ts';
import { createServerMetrics } from './metrics.ts';
import { ensureSelfSigned, loadTlsFiles, type TlsIdentity } from './tls.ts';
import { openDatabase } from '../store/open.ts';
import { putSetting, SETTING } from '../store/server/settings-repo.ts';
import { deleteExpiredSessions } from '../store/server/credentials-repo.ts';
import { EXIT, PatchlineError } from '../domain/errors.ts';

export interface RunningServer {
  readonly url: string;
  readonly fingerprint: string | null;
  readonly app: App;
  readonly deps: ServerDeps;
  readonly tls: TlsIdentity | null;
  /** Idempotent graceful stop. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: FastifyServerOptions['logger'];
  readonly now?: () => Date;
  readonly plugins?: BuildAppOptions['plugins'];
  readonly catalog?: CatalogService;
  /** The catalog cab and content cache files agents download (the composition root wires src/catalog and src/content). */
  readonly agentFiles?: BuildAppOptions['agentFiles'];
  readonly content?: ServerDeps['content'];
  readonly cacheStateOf?: ServerDeps['cacheStateOf'];
  readonly catalogDetails?: ServerDeps['catalogDetails'];
}

export async function resolveTls(config: ServerConfig, now: Date): Promise<TlsIdentity | null> {
  if (config.tls.kind === 'files') return loadTlsFiles(config.tls.cert, config.tls.key);
  if (config.tls.kind === 'self-signed') return ensureSelfSigned(config.dataDir, now);
  return null;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const now = options.now ?? (() => new Date());
  const tls = await resolveTls(config, now());
  const store = await openDatabase(config.db);
  let app: App | undefined;
  const feed = createEventFeed(store.db, (error) =>
    app?.log.warn({ err: error }, 'event feed: polling the outbox failed'),
  );
  try {
    // The CLI reads the fingerprint from here to put it in enrollment tokens it creates.
    await putSetting(store.db, SETTING.tlsFingerprint, tls?.fingerprint ?? '', now().toISOString());
    await deleteExpiredSessions(store.db, now().toISOString());
    const deps: ServerDeps = {
      store,
      now,
      secureCookies: tls !== null,
      tlsFingerprint: tls?.fingerprint ?? null,
      feed,
      metrics: createServerMetrics(),
      catalog: options.catalog,
      content: options.content,
      cacheStateOf: options.cacheStateOf,
      catalogDetails: options.catalogDetails,
    };
    app = await buildApp(deps, {
      logger: options.logger ?? { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
      plugins: options.plugins,
      agentFiles: options.agentFiles,
      ...(tls ? { https: { cert: tls.certPem, key: tls.keyPem } } : {}),
    });
    for (const warning of config.warnings) app.log.warn(warning);
    feed.start();
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (cause) {
      throw new PatchlineError(
        'LISTEN_FAILED',
        `Cannot listen on ${config.host}:${config.port}: ${(cause as Error).message}`,
        { cause, exitCode: EXIT.FAILED },
      );
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
    let closing: Promise<void> | undefined;
    const running: RunningServer = {
      url,
      fingerprint: tls?.fingerprint ?? null,
      app,
      deps: appDeps(app),
      tls,
      close() {
        closing ??= (async () => {
          const deadline = setTimeout(() => app!.server.closeAllConnections(), SHUTDOWN_DEADLINE_MS);
          try {
            await app!.close();
          } finally {
            clearTimeout(deadline);
            feed.stop();
            await store.close();
          }
        })();
        return closing;
      },
    };
    // The console's first grid request after a start would read every host's update rows (about
    // 18 s at 10,000 hosts × 90 rows): read them now, in the background, so the wait is mostly over
    // by the time someone looks. A request meanwhile waits for this load and adds only what changed.
    const fleet = running.deps.fleet;
    if (fleet)
      fleet.view().then(
        (view) => app!.log.info({ hosts: view.hosts.length }, 'fleet view ready for the console'),
        (error: unknown) =>
          app!.log.warn({ err: error }, 'reading the fleet view at start failed; the first grid request reads it'),
      );
    return running;
  } catch (error) {
    feed.stop();
    await app?.close();
    await store.close();
    throw error;
  }
}
