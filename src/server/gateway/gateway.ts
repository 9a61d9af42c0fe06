/**
 * The agent gateway: a Fastify plugin with every route an enrolled agent uses (src/domain/
 * agent-protocol.ts lists them; the check-in is in checkin.ts, the catalog and content files in
 * files.ts, the error answers in errors.ts). The server registers it in buildApp and calls `wake(hostIds)`
 * whenever it creates an action, so a held check-in answers at once.
 *
 * Authentication is an onRequest hook (a request is refused before its body is read). The
 * credential names its host; every handler works on that host only, so an agent can read and
 * write nothing else. Errors are `{ error: { code, message } }` with the codes in docs/errors.md.
 */
import { randomBytes as nodeRandomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ActionProgress,
  AgentAction,
  AgentPolicy,
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
import { registerCheckin } from './checkin.ts';
import { enrollRefused, GatewayError, replyError } from './errors.ts';
import { registerFileRoutes } from './files.ts';
import { AGENT_TRAFFIC, SMALL_BODY_BYTES } from './route-options.ts';
import type { AgentHost, GatewayStore } from './store.ts';
import { LongPollHub } from './waiters.ts';

export { MAX_CHECKIN_WAIT_SECONDS } from './route-options.ts';
export { GatewayError } from './errors.ts';

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

    registerFileRoutes(app, { deps, errors });
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
