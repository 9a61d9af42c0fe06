/**
 * The agent gateway: a Fastify plugin with every route an enrolled agent uses (src/domain/
 * agent-protocol.ts lists them). The server registers it in buildApp and calls `wake(hostIds)`
 * whenever it creates an action, so a held check-in answers at once.
 *
 * Authentication is an onRequest hook (a request is refused before its body is read). The
 * credential names its host; every handler works on that host only, so an agent can read and
 * write nothing else. Errors are `{ error: { code, message } }` with the codes in docs/errors.md.
 */
import { randomBytes as nodeRandomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  AGENT_PROTOCOL_VERSION,
  ActionProgress,
  AgentAction,
  AgentPolicy,
  CatalogInfo,
  EnrollRequest,
  EnrollResponse,
  ErrorBody,
  MAX_REPORT_BYTES,
  PolicyAnswer,
  ReportAck,
  ScanReport,
  decodeCredential,
  decodeEnrollToken,
  encodeCredential,
  tokenSecretHash,
} from '../../domain/agent-protocol.ts';
import { sendImmutableFile } from './file-reply.ts';
import type { AgentHost, GatewayStore } from './store.ts';
import { registerCheckin } from './checkin.ts';
import { AGENT_TRAFFIC, SMALL_BODY_BYTES } from './route-options.ts';
import { LongPollHub } from './waiters.ts';

export { MAX_CHECKIN_WAIT_SECONDS } from './route-options.ts';

/** An event for the server's live feed (/api/v1/events). */
export type GatewayEvent =
  | { readonly type: 'host-enrolled'; readonly hostId: string; readonly host: string; readonly ring: string }
  | {
      readonly type: 'host-report';
      readonly hostId: string;
      readonly host: string;
      readonly seq: number;
      readonly needed: number;
      readonly installed: number;
    }
  | {
      readonly type: 'action-progress';
      readonly hostId: string;
      readonly host: string;
      readonly actionId: string;
      readonly progress: ActionProgress;
    };

export interface CatalogFile {
  readonly sha256: string;
  readonly size: number;
  readonly path: string;
}

export interface GatewayDeps {
  readonly store: GatewayStore;
  readonly now: () => Date;
  /**
   * What the host's ring and the rules allow it now, decided on the host's last applied report
   * (never an older view of it: an install action asks between passes, GET /api/v1/agent/policy).
   * With `reportMayLag` (a check-in an action woke), the answer may be the one decided on an
   * earlier report of the host, under the current rules and rings: see PolicyOptions.
   */
  readonly policyFor: (host: AgentHost, options?: PolicyOptions) => Promise<AgentPolicy>;
  /** The current verified catalog cab, or null before the first sync. */
  readonly catalog: () => Promise<CatalogFile | null>;
  /** A payload file of the content cache by digest (sha1 or sha256, hex), or null when not cached. */
  readonly content: (digest: string) => Promise<{ readonly path: string; readonly size: number } | null>;
  /**
   * An update's payload files, fetched into the content cache first (joins a download in flight):
   * null when the catalog lists none, 'pending' while they are still downloading. Absent: the
   * server has no content cache, agents download from upstream.
   */
  readonly updateContent?: (updateId: string) => Promise<readonly UpdateContentFile[] | null | 'pending'>;
  /** Told the bytes of each payload response sent (the content-served figures). */
  readonly onContentServed?: (bytes: number) => void;
  readonly publish?: (event: GatewayEvent) => void;
  readonly randomBytes?: (n: number) => Buffer;
  readonly newHostId?: () => string;
}

export interface PolicyOptions {
  /**
   * The policy decided on an earlier report of the host will do, as long as the rules, rings and
   * clock it was decided under still hold. An action wakes every held check-in of a ring at once
   * and right after a report storm each host's policy would otherwise be decided again before its
   * action is answered (10,000 hosts × 100 updates): the action must not wait for that. The agent
   * already holds that policy (its previous check-in carried it); its next check-in carries the one
   * decided on its last report, and an install action asks GET /api/v1/agent/policy between passes.
   */
  readonly reportMayLag?: boolean;
}

/** One payload file of an update, as the content cache holds it. */
export interface UpdateContentFile {
  /** The cache key (sha256 when the catalog gives it, else sha1), hex. */
  readonly digest: string;
  readonly sha1: string | null;
  readonly sha256: string | null;
  readonly size: number | null;
  readonly fileName: string | null;
}

const UpdateContentResponse = Type.Object({
  files: Type.Array(
    Type.Object({
      digest: Type.String(),
      sha1: Type.Union([Type.String(), Type.Null()]),
      sha256: Type.Union([Type.String(), Type.Null()]),
      size: Type.Union([Type.Integer(), Type.Null()]),
      fileName: Type.Union([Type.String(), Type.Null()]),
      url: Type.String(),
    }),
  ),
});

export interface AgentGateway {
  /** Register with `app.register(gateway.plugin)`; the routes carry their full /api/v1/agent paths. */
  readonly plugin: FastifyPluginAsync;
  /**
   * Answers the held check-ins of these hosts now (call after creating an action for them, with the
   * action as the agent receives it: the answers then read nothing; without it they read the host's
   * pending actions).
   */
  wake(hostIds: Iterable<string>, action?: AgentAction): number;
  /** Hosts with a check-in held open now. */
  readonly connected: () => number;
  isConnected(hostId: string): boolean;
  /** Ends every held check-in (server shutdown); idempotent. */
  close(): void;
}

/** An error the gateway answers with; `statusCode` and a stable `code`. */
export class GatewayError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    agentHost?: AgentHost;
  }
}

export function createAgentGateway(deps: GatewayDeps): AgentGateway {
  /** A wake carries the actions just created for the host: its answer needs no read of them. */
  const hub = new LongPollHub<readonly AgentAction[]>();
  const random = deps.randomBytes ?? nodeRandomBytes;
  const newHostId = deps.newHostId ?? randomUUID;
  const publish = deps.publish ?? (() => undefined);

  async function authenticate(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : null;
    if (!bearer)
      throw new GatewayError(
        401,
        'AGENT_UNAUTHENTICATED',
        'this route needs the agent credential (Authorization: Bearer plh1.…); enroll the agent first',
      );
    const parsed = decodeCredential(bearer);
    const host = parsed ? await deps.store.host(parsed.hostId) : null;
    if (!parsed || !host || !sameHash(host.credentialHash, tokenSecretHash(parsed.secret))) {
      throw new GatewayError(
        401,
        'AGENT_CREDENTIAL_INVALID',
        'the agent credential is not valid (unknown, replaced by a new enrollment, or garbled): enroll the agent again',
      );
    }
    if (host.revokedAt !== null)
      throw new GatewayError(
        403,
        'AGENT_HOST_REVOKED',
        `host ${host.name} was revoked at ${host.revokedAt}: an administrator must re-admit it`,
      );
    request.agentHost = host;
  }

  const plugin: FastifyPluginAsync = async (instance) => {
    const app = instance.withTypeProvider<TypeBoxTypeProvider>();
    // TypeBox's compiler refuses unknown fields (Fastify's default Ajv would strip them silently).
    app.setValidatorCompiler(TypeBoxValidatorCompiler);
    app.setErrorHandler((error: FastifyError, _request, reply) => replyError(reply, error));
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.url === `/api/v1/agent/enroll`) return;
      await authenticate(request);
    });

    const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

    app.post(
      '/api/v1/agent/enroll',
      {
        bodyLimit: SMALL_BODY_BYTES,
        schema: {
          tags: ['agent'],
          summary: 'Enroll a host with an enrollment token',
          body: EnrollRequest,
          response: { 201: EnrollResponse, ...errors },
        },
      },
      async (request, reply) => {
        const token = decodeEnrollToken(request.body.token);
        if (!token)
          throw new GatewayError(
            400,
            'ENROLL_TOKEN_MALFORMED',
            'that is not an enrollment token (ET1.…): copy it whole from `patchline server enroll-token create`',
          );
        const secret = random(32).toString('base64url');
        const result = await deps.store.enroll({
          tokenHash: tokenSecretHash(token.secret),
          hostName: request.body.hostName,
          hostId: newHostId(),
          credentialHash: tokenSecretHash(secret),
          agentVersion: request.body.agentVersion,
          now: deps.now(),
        });
        if (!result.ok) throw enrollRefused(result.code);
        publish({ type: 'host-enrolled', hostId: result.host.id, host: result.host.name, ring: result.host.ring });
        request.log.info({ host: result.host.name, ring: result.host.ring }, 'agent enrolled');
        return reply.code(201).send({
          hostId: result.host.id,
          hostName: result.host.name,
          ring: result.host.ring,
          credential: encodeCredential(result.host.id, secret),
        });
      },
    );

    registerCheckin(app, { deps, hub, errors });

    app.get(
      '/api/v1/agent/policy',
      {
        ...AGENT_TRAFFIC,
        schema: {
          tags: ['agent'],
          summary: "The policy decided on this host's last applied report (an install action asks between passes)",
          response: { 200: PolicyAnswer, ...errors },
        },
      },
      async (request) => {
        const host = request.agentHost!;
        // The seq is read first: the policy below is decided on this report or a newer one.
        const ackedReportSeq = await deps.store.ackedReportSeq(host.id);
        return { policy: await deps.policyFor(host), ackedReportSeq };
      },
    );

    app.post(
      '/api/v1/agent/reports',
      {
        ...AGENT_TRAFFIC,
        bodyLimit: MAX_REPORT_BYTES,
        schema: {
          tags: ['agent'],
          summary: 'Send a scan report (full or delta; idempotent by seq)',
          body: ScanReport,
          response: { 200: ReportAck, 409: ErrorBody, ...errors },
        },
      },
      async (request, reply) => {
        const host = request.agentHost!;
        const report = request.body;
        const seen = new Set<string>();
        for (const id of [...report.updates.map((u) => u.updateId), ...report.removed]) {
          const key = id.toLowerCase();
          if (seen.has(key))
            throw new GatewayError(
              400,
              'AGENT_REPORT_INVALID',
              `update ${id} appears twice in report ${report.seq}: each update once`,
            );
          seen.add(key);
        }
        if (report.baseSeq === null && report.removed.length > 0)
          throw new GatewayError(400, 'AGENT_REPORT_INVALID', 'a full report (baseSeq null) cannot remove updates');
        if (report.baseSeq !== null && report.baseSeq >= report.seq)
          throw new GatewayError(
            400,
            'AGENT_REPORT_INVALID',
            `baseSeq ${report.baseSeq} must be below seq ${report.seq}`,
          );
        const outcome = await deps.store.applyReport(host.id, report, deps.now());
        if (outcome.status === 'base-mismatch') {
          return reply.code(409).send({
            error: {
              code: 'AGENT_REPORT_BASE_MISMATCH',
              message: `this delta builds on report ${report.baseSeq}, the server holds ${outcome.ackedSeq}: send a full report`,
            },
          });
        }
        // The counts cost a read of the host's whole inventory: only when someone listens (the server
        // composition publishes through the store's events outbox instead).
        if (outcome.status === 'applied' && deps.publish) {
          const inv = await deps.store.inventory(host.id);
          let needed = 0;
          for (const u of inv.updates.values()) if (u.applicability === 'needed') needed++;
          publish({
            type: 'host-report',
            hostId: host.id,
            host: host.name,
            seq: report.seq,
            needed,
            installed: inv.updates.size - needed,
          });
        }
        return { ackedSeq: outcome.ackedSeq, status: outcome.status };
      },
    );

    app.post(
      '/api/v1/agent/actions/:id/progress',
      {
        ...AGENT_TRAFFIC,
        bodyLimit: SMALL_BODY_BYTES,
        schema: {
          tags: ['agent'],
          summary: "Report an action's progress",
          params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
          body: ActionProgress,
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        const host = request.agentHost!;
        const ok = await deps.store.recordProgress(host.id, request.params.id, request.body, deps.now());
        if (!ok)
          throw new GatewayError(404, 'AGENT_ACTION_NOT_FOUND', `no action ${request.params.id} for host ${host.name}`);
        publish({
          type: 'action-progress',
          hostId: host.id,
          host: host.name,
          actionId: request.params.id,
          progress: request.body,
        });
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/api/v1/agent/catalog',
      {
        schema: { tags: ['agent'], summary: 'The current catalog cab', response: { 200: CatalogInfo, ...errors } },
      },
      async () => {
        const catalog = await deps.catalog();
        if (!catalog)
          throw new GatewayError(
            404,
            'AGENT_CATALOG_NONE',
            'the server has no catalog yet: it syncs on its schedule, or run `patchline catalog sync`',
          );
        return { sha256: catalog.sha256, size: catalog.size, url: `/api/v1/agent/catalog/${catalog.sha256}.cab` };
      },
    );

    app.get(
      '/api/v1/agent/catalog/:file',
      {
        schema: {
          tags: ['agent'],
          summary: 'Download the catalog cab by digest (Range, ETag)',
          params: Type.Object({ file: Type.String({ pattern: '^[0-9a-f]{64}\\.cab$' }) }),
        },
      },
      async (request, reply) => {
        const catalog = await deps.catalog();
        if (!catalog || `${catalog.sha256}.cab` !== request.params.file) {
          throw new GatewayError(
            404,
            'AGENT_CATALOG_GONE',
            'that catalog is no longer current: ask /api/v1/agent/catalog for the current one',
          );
        }
        return sendImmutableFile(request, reply, {
          path: catalog.path,
          size: catalog.size,
          digest: catalog.sha256,
          contentType: 'application/vnd.ms-cab-compressed',
        });
      },
    );

    app.get(
      '/api/v1/agent/updates/:updateId/content',
      {
        schema: {
          tags: ['agent'],
          summary: "The payload files of an update this host needs and may install, from the server's content cache",
          params: Type.Object({ updateId: Type.String({ pattern: '^[0-9a-fA-F-]{36}$' }) }),
          response: { 200: UpdateContentResponse, 503: ErrorBody, ...errors },
        },
      },
      async (request, reply) => {
        const host = request.agentHost!;
        const updateId = request.params.updateId.toLowerCase();
        // Need-driven: only what the policy allows this host (it needs it and may install it) is fetched.
        const policy = await deps.policyFor(host);
        if (!policy.allowedUpdateIds.some((id) => id.toLowerCase() === updateId)) {
          throw new GatewayError(
            403,
            'AGENT_CONTENT_NOT_ALLOWED',
            `update ${updateId} is not allowed on ${host.name} (or not needed): the server fetches only what a host may install`,
          );
        }
        const files = deps.updateContent ? await deps.updateContent(updateId) : null;
        if (files === 'pending') {
          return reply
            .code(503)
            .header('retry-after', '10')
            .send({
              error: {
                code: 'AGENT_CONTENT_DOWNLOADING',
                message: `the server is still downloading the files of ${updateId}: retry shortly`,
              },
            });
        }
        if (files === null)
          throw new GatewayError(
            404,
            'AGENT_CONTENT_NONE',
            `the server has no cached files for ${updateId} (no content cache, or the catalog lists none): download from upstream`,
          );
        return { files: files.map((f) => ({ ...f, url: `/api/v1/agent/content/${f.digest}` })) };
      },
    );

    app.get(
      '/api/v1/agent/content/:digest',
      {
        schema: {
          tags: ['agent'],
          summary: 'Download a cached payload file by digest (Range, ETag)',
          params: Type.Object({ digest: Type.String({ pattern: '^([0-9a-f]{40}|[0-9a-f]{64})$' }) }),
        },
      },
      async (request, reply) => {
        const file = await deps.content(request.params.digest);
        if (!file)
          throw new GatewayError(
            404,
            'AGENT_CONTENT_NOT_CACHED',
            `payload ${request.params.digest} is not in the server's cache (yet): retry later`,
          );
        const sent = sendImmutableFile(request, reply, {
          path: file.path,
          size: file.size,
          digest: request.params.digest,
        });
        if (request.method === 'GET' && (reply.statusCode === 200 || reply.statusCode === 206))
          deps.onContentServed?.(Number(reply.getHeader('content-length') ?? 0));
        return sent;
      },
    );
  };

  return {
    plugin,
    wake: (hostIds, action) => hub.wake(hostIds, action ? [action] : undefined),
    connected: () => hub.connected,
    isConnected: (hostId) => hub.isConnected(hostId),
    close: () => hub.close(),
  };
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

function enrollRefused(code: string): GatewayError {
  switch (code) {
    case 'ENROLL_TOKEN_EXPIRED':
      return new GatewayError(
        403,
        'ENROLL_TOKEN_EXPIRED',
        'the enrollment token has expired: create a new one with `patchline server enroll-token create`',
      );
    case 'ENROLL_TOKEN_USED_UP':
      return new GatewayError(
        403,
        'ENROLL_TOKEN_USED_UP',
        'the enrollment token was single-use and is used up: create a new one',
      );
    case 'ENROLL_HOST_REVOKED':
      return new GatewayError(
        403,
        'ENROLL_HOST_REVOKED',
        'this host was revoked: an administrator must re-admit it before it can enroll again',
      );
    default:
      return new GatewayError(
        403,
        'ENROLL_TOKEN_UNKNOWN',
        'the server does not know this enrollment token (revoked, or from another server)',
      );
  }
}

/** Turns any error into the gateway's JSON error; validation and size errors are 400 with stable codes. */
function replyError(reply: FastifyReply, error: FastifyError | GatewayError): FastifyReply {
  if (error instanceof GatewayError)
    return reply.code(error.statusCode).send({ error: { code: error.code, message: error.message } });
  if (error.validation) {
    return reply.code(400).send({
      error: {
        code: 'AGENT_REQUEST_INVALID',
        message: `the request does not match the agent protocol (version ${AGENT_PROTOCOL_VERSION}): ${error.message}`,
      },
    });
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(400).send({
      error: {
        code: 'AGENT_REPORT_TOO_LARGE',
        message: `the request body is larger than ${MAX_REPORT_BYTES} bytes: send a delta report, or fewer updates`,
      },
    });
  }
  if (
    error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ||
    error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    (error.statusCode === 400 && error instanceof SyntaxError)
  ) {
    return reply.code(400).send({
      error: { code: 'AGENT_REQUEST_INVALID', message: `the request body is not valid JSON: ${error.message}` },
    });
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return reply.code(400).send({ error: { code: 'AGENT_REQUEST_INVALID', message: error.message } });
  }
  reply.log.error({ err: error }, 'agent gateway: internal error');
  return reply
    .code(500)
    .send({ error: { code: 'INTERNAL', message: 'internal error in the agent gateway (logged on the server)' } });
}
