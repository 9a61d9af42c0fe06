/**
 * buildApp(deps): the whole HTTP API as a Fastify instance that listens on nothing (tests call
 * `app.inject()`; server.ts listens). Order matters and is fixed here:
 *  1. error shape, body limit, strict validation (unknown fields are refused, not dropped);
 *  2. cookies, rate limits, authentication (an onRequest hook: refused before the body is read);
 *  3. the OpenAPI generator, then one plugin per resource — each with its TypeBox schemas.
 * Request latency is observed for /metrics; logs redact every credential.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AGENT_API_PREFIX } from '../domain/agent-protocol.ts';
import { registerAuthentication } from './auth/authenticate.ts';
import { DEFAULT_ACCESS, type Access } from './auth/roles.ts';
import type { ServerDeps } from './context.ts';
import { ApiError, errorHandler, notFoundHandler } from './errors.ts';
import { ErrorBody } from './routes/schemas.ts';
import { healthRoutes } from './routes/health.ts';
import { sessionRoutes } from './routes/session.ts';
import { userRoutes } from './routes/users.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { auditRoutes } from './routes/audit.ts';
import { eventRoutes } from './routes/events.ts';
import { metaRoutes } from './routes/meta.ts';
import { consoleRoutes } from './console.ts';
import { hostRoutes } from './routes/hosts.ts';
import { viewRoutes } from './routes/views.ts';
import { updateRoutes } from './routes/updates.ts';
import { policyRoutes } from './routes/policy.ts';
import { actionRoutes } from './routes/actions.ts';
import { catalogContentRoutes } from './routes/catalog-content.ts';
import { createServerGateway, type AgentFiles } from './fleet/agents.ts';
import { createFleetViews } from './fleet/fleet-cache.ts';

/** Default request body limit. Agent reports that need more raise it on their own route. */
export const BODY_LIMIT_BYTES = 256 * 1024;
export const API_VERSION = '1';

/** Paths pino must never print (credentials in headers, passwords and tokens in bodies). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.secret',
  '*.csrfToken',
];

export interface BuildAppOptions {
  /** pino options or false (tests). Default: info level with credentials redacted. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Extra route plugins (the agent gateway), registered after the core ones with the same deps. */
  readonly plugins?: readonly ((app: FastifyInstance, deps: ServerDeps) => Promise<void>)[];
  /** The agent gateway's files (catalog cab, content cache); absent: none yet. False: no gateway (tests of the API alone). */
  readonly agentFiles?: AgentFiles | false;
  /** Serve TLS with this PEM certificate and key (server.ts); absent: plain HTTP or inject only. */
  readonly https?: { readonly cert: string; readonly key: string };
  /** The built console (default web/dist); tests may point elsewhere. */
  readonly consoleDir?: string;
}

export type App = FastifyInstance;

/** The deps each app was built with, as its routes see them (with the agent gateway in `agents`). */
const composedDeps = new WeakMap<App, ServerDeps>();

/**
 * The deps `app` runs on, including the agent gateway buildApp composed (the deps passed in do not
 * have it): the entry point and tests use it to wake or count connected agents.
 */
export function appDeps(app: App): ServerDeps {
  const deps = composedDeps.get(app);
  if (!deps) throw new Error('appDeps: this app was not built by buildApp');
  return deps;
}

export async function buildApp(baseDeps: ServerDeps, options: BuildAppOptions = {}): Promise<App> {
  // The agent gateway is part of the app: actions wake its held check-ins.
  const gateway = options.agentFiles === false ? undefined : createServerGateway(baseDeps, options.agentFiles ?? {});
  const deps: ServerDeps = {
    ...baseDeps,
    ...(gateway ? { agents: gateway } : {}),
    fleet: baseDeps.fleet ?? createFleetViews(baseDeps.store.db, baseDeps.cacheStateOf),
  };
  const app = (Fastify as (o: FastifyServerOptions & { https?: object }) => FastifyInstance)({
    ...(options.https ? { https: { ...options.https } } : {}),
    logger: options.logger ?? { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    bodyLimit: BODY_LIMIT_BYTES,
    // The default would silently drop unknown fields; we refuse them (a typo must not be ignored).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    // Behind a reverse proxy set trustProxy in a later step; until then the socket address is the caller.
    trustProxy: false,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addSchema(ErrorBody);

  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new ApiError(429, 'RATE_LIMITED', `Too many attempts; try again in ${context.after}.`),
  });
  registerAuthentication(app, deps);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    deps.metrics.requestDuration.observe(reply.elapsedTime / 1000, {
      route,
      method: request.method,
      status: `${Math.floor(reply.statusCode / 100)}xx`,
    });
  });
  deps.metrics.registry.collect(async () => {
    const now = deps.now().toISOString();
    const rows = await deps.store.db.selectFrom('hosts').select(['revoked_at', 'online_until']).execute();
    const count = { online: 0, offline: 0, revoked: 0 };
    for (const h of rows)
      count[h.revoked_at ? 'revoked' : h.online_until && h.online_until > now ? 'online' : 'offline'] += 1;
    for (const [status, n] of Object.entries(count)) deps.metrics.hosts.set(n, { status });
    const queued = await deps.store.db
      .selectFrom('action_hosts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', 'in', ['queued', 'delivered', 'running'])
      .executeTakeFirstOrThrow();
    deps.metrics.actionsQueued.set(Number(queued.n));
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Patchline fleet server',
        version: API_VERSION,
        description:
          'Every route needs a credential unless marked public: `Authorization: Bearer <API token>`, or the console session cookie plus `X-CSRF-Token` on changes. `x-patchline-access` names the least role a route needs.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'API token (patchline server token create) or agent credential',
          },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: 'patchline_session',
            description: 'Console session; changes also need X-CSRF-Token',
          },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      // The agent gateway authenticates agents itself: enrollment is public, the rest needs a credential.
      const agentRoute = url.startsWith(`${AGENT_API_PREFIX}/`);
      const access: Access = agentRoute
        ? url === `${AGENT_API_PREFIX}/enroll`
          ? 'public'
          : 'agent'
        : ((route.config as { access?: Access } | undefined)?.access ?? DEFAULT_ACCESS);
      const security: Record<string, string[]>[] =
        access === 'public' ? [] : access === 'agent' ? [{ bearer: [] }] : [{ bearer: [] }, { session: [] }];
      return { schema: { ...schema, security, 'x-patchline-access': access } as unknown as typeof schema, url };
    },
  });

  for (const plugin of [
    healthRoutes,
    sessionRoutes,
    userRoutes,
    tokenRoutes,
    auditRoutes,
    eventRoutes,
    metaRoutes,
    hostRoutes,
    updateRoutes,
    viewRoutes,
    policyRoutes,
    actionRoutes,
    catalogContentRoutes,
  ]) {
    await app.register(plugin, { deps });
  }
  if (gateway) {
    await app.register(gateway.plugin);
    // Held check-ins end first, so closing does not wait out their long-poll.
    app.addHook('preClose', async () => gateway.close());
    deps.metrics.registry.collect(async () => deps.metrics.agentsConnected.set(gateway.connected()));
  }
  for (const plugin of options.plugins ?? []) await plugin(app, deps);
  await consoleRoutes(app, options.consoleDir);
  await app.ready();
  composedDeps.set(app, deps);
  return app;
}
