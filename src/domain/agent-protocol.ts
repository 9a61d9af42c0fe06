/**
 * The agent protocol: what an enrolled agent and the server's agent gateway say to each other over
 * HTTP(S), as TypeBox schemas (one schema → the gateway's validation and OpenAPI, and the static
 * types both sides use). Pure data: the schemas are JSON Schema objects, nothing here does I/O.
 * It lives in domain/ because both `agent/` and `server/` speak it and neither may import the other.
 *
 *   POST /api/v1/agent/enroll                 enrollment token → per-host credential (no auth)
 *   POST /api/v1/agent/checkin                long-poll: held open until an action is waiting or `wait` s pass;
 *                                             the policy is left out while the agent holds it (policyDigest)
 *   POST /api/v1/agent/reports                scan report, full or delta, sequence-numbered, idempotent
 *   POST /api/v1/agent/actions/{id}/progress  received / running / percent / succeeded / failed
 *   GET  /api/v1/agent/policy                 the policy decided on the host's last applied report
 *   GET  /api/v1/agent/catalog                the current cab's digest, size and immutable URL
 *   GET  /api/v1/agent/catalog/{sha256}.cab   the cab (Range, ETag, immutable)
 *   GET  /api/v1/agent/content/{digest}       a payload file from the content cache (Range, ETag, immutable)
 *
 * Every route but enroll takes `Authorization: Bearer <credential>`; the credential names its host,
 * so an agent can only ever read and write its own host's data.
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';

export const AGENT_API_PREFIX = '/api/v1/agent';
/** Bumped on an incompatible change; the gateway refuses other versions with AGENT_PROTOCOL_VERSION. */
export const AGENT_PROTOCOL_VERSION = 1;

/** A host name as the agent reports it (NetBIOS/DNS label rules, loosely). */
const HostName = Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const Guid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
const HResult = Type.String({ pattern: '^0x[0-9A-Fa-f]{8}$' });
const IsoTime = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
  maxLength: 40,
});
const Closed = { additionalProperties: false } as const;

/** The largest report an agent may send (a full report of ~150 updates is ~30 KB; 2,000 fit). */
export const MAX_REPORT_UPDATES = 5_000;
export const MAX_REPORT_BYTES = 4 * 1024 * 1024;

// ── enrollment ──────────────────────────────────────────────────────────────────────────────

export const EnrollRequest = Type.Object(
  {
    protocol: Type.Literal(AGENT_PROTOCOL_VERSION),
    token: Type.String({ minLength: 1, maxLength: 1024 }),
    hostName: HostName,
    agentVersion: Type.String({ maxLength: 64 }),
    osVersion: Type.Optional(Type.String({ maxLength: 128 })),
  },
  Closed,
);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const EnrollResponse = Type.Object({
  hostId: Type.String(),
  hostName: Type.String(),
  ring: Type.String(),
  /** Shown once: the server keeps only its hash. */
  credential: Type.String(),
});
export type EnrollResponse = Static<typeof EnrollResponse>;

// ── check-in (long-poll) ────────────────────────────────────────────────────────────────────

export const ACTION_KINDS = ['scan', 'download', 'install', 'reboot'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export const CheckinRequest = Type.Object(
  {
    protocol: Type.Literal(AGENT_PROTOCOL_VERSION),
    /** Longest time the server may hold the request open without news; 0 answers at once. */
    waitSeconds: Type.Integer({ minimum: 0, maximum: 60 }),
    agentVersion: Type.String({ maxLength: 64 }),
    /** The agent's boot id (LastBootUpTime): the server sees reboots complete. */
    bootId: Type.Optional(Type.String({ maxLength: 64 })),
    /**
     * `policyDigest` of the policy the agent holds (from an earlier answer): while it is still the
     * host's policy, the answer leaves the policy out. Absent: the answer carries it.
     */
    policyDigest: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  },
  Closed,
);
export type CheckinRequest = Static<typeof CheckinRequest>;

export const AgentAction = Type.Object({
  id: Type.String(),
  action: Type.Union([Type.Literal('scan'), Type.Literal('download'), Type.Literal('install'), Type.Literal('reboot')]),
  /** Update ids the action is limited to; absent: whatever policy allows. */
  updateIds: Type.Optional(Type.Array(Type.String())),
  createdAt: IsoTime,
});
export type AgentAction = Static<typeof AgentAction>;

/** A ring's maintenance window: weekdays (0 = Sunday), local start time, duration, IANA time zone. */
export const MaintenanceWindow = Type.Object({
  weekdays: Type.Array(Type.Integer({ minimum: 0, maximum: 6 })),
  start: Type.String({ pattern: '^[0-2][0-9]:[0-5][0-9]$' }),
  durationMinutes: Type.Integer({ minimum: 1, maximum: 7 * 24 * 60 }),
  timeZone: Type.String(),
});
export type MaintenanceWindow = Static<typeof MaintenanceWindow>;

export const REBOOT_POLICY_KINDS = ['never', 'if-required', 'always'] as const;

/** What the agent does on its own (unattended work); operator actions run now whatever the window. */
export const AgentPolicy = Type.Object({
  ring: Type.String(),
  scanIntervalSeconds: Type.Integer({ minimum: 60 }),
  scanSource: Type.Union([Type.Literal('offline'), Type.Literal('online')]),
  windows: Type.Array(MaintenanceWindow),
  reboot: Type.Union([Type.Literal('never'), Type.Literal('if-required'), Type.Literal('always')]),
  installAtShutdown: Type.Boolean(),
  directDownload: Type.Boolean(),
  /** Update ids the policy allows on this host now (decision = allowed). */
  allowedUpdateIds: Type.Array(Type.String()),
});
export type AgentPolicy = Static<typeof AgentPolicy>;

const namedPolicies = new WeakMap<AgentPolicy, { readonly json: string; readonly digest: string }>();

/**
 * A policy's JSON and the digest a check-in answer names it by (sha256 of that JSON). The server
 * keeps one policy object per host until it changes, so each is serialised and hashed once
 * (remembered per object), when it is decided rather than in the burst of answers an action wakes.
 */
export function namedPolicy(policy: AgentPolicy): { readonly json: string; readonly digest: string } {
  let named = namedPolicies.get(policy);
  if (named === undefined) {
    const json = JSON.stringify(policy);
    named = { json, digest: createHash('sha256').update(json).digest('hex') };
    namedPolicies.set(policy, named);
  }
  return named;
}

/** The digest of namedPolicy(policy). */
export const policyDigest = (policy: AgentPolicy): string => namedPolicy(policy).digest;

export const CheckinResponse = Type.Object({
  serverTime: IsoTime,
  actions: Type.Array(AgentAction),
  /** Absent when the check-in named this policy's digest: the agent already holds it. */
  policy: Type.Optional(AgentPolicy),
  /** Names the host's current policy (sha256 of its JSON); send it back as the check-in's `policyDigest`. */
  policyDigest: Type.String(),
  /** sha256 of the current catalog cab, or null before the first sync. */
  catalogSha256: Type.Union([Type.String(), Type.Null()]),
  /** The last report sequence the server applied (the delta base); 0: send a full report. */
  ackedReportSeq: Type.Integer({ minimum: 0 }),
});
export type CheckinResponse = Static<typeof CheckinResponse>;

/**
 * GET /api/v1/agent/policy: what the policy allows this host, decided on the report the server
 * applied last (`ackedReportSeq`), never on an older view. An install action asks after each pass's
 * report: an update that became applicable (a CU after its SSU) is decided before the next pass.
 */
export const PolicyAnswer = Type.Object({
  policy: AgentPolicy,
  ackedReportSeq: Type.Integer({ minimum: 0 }),
});
export type PolicyAnswer = Static<typeof PolicyAnswer>;

// ── scan reports ────────────────────────────────────────────────────────────────────────────

export const UPDATE_APPLICABILITY = ['needed', 'installed'] as const;
export type UpdateApplicability = (typeof UPDATE_APPLICABILITY)[number];

export const LastAttempt = Type.Object(
  {
    phase: Type.Union([Type.Literal('download'), Type.Literal('install')]),
    resultCode: Type.Union([
      Type.Literal('notStarted'),
      Type.Literal('inProgress'),
      Type.Literal('succeeded'),
      Type.Literal('succeededWithErrors'),
      Type.Literal('failed'),
      Type.Literal('aborted'),
    ]),
    hresult: Type.Union([HResult, Type.Null()]),
    attempts: Type.Integer({ minimum: 1 }),
    at: IsoTime,
  },
  Closed,
);
export type LastAttempt = Static<typeof LastAttempt>;

export const ReportedUpdate = Type.Object(
  {
    updateId: Guid,
    revisionNumber: Type.Integer({ minimum: 0 }),
    kbs: Type.Array(Type.String({ pattern: '^[0-9]{1,10}$' }), { maxItems: 16 }),
    applicability: Type.Union([Type.Literal('needed'), Type.Literal('installed')]),
    downloaded: Type.Boolean(),
    lastAttempt: Type.Union([LastAttempt, Type.Null()]),
  },
  Closed,
);
export type ReportedUpdate = Static<typeof ReportedUpdate>;

export const ScanReport = Type.Object(
  {
    protocol: Type.Literal(AGENT_PROTOCOL_VERSION),
    /** Strictly increasing per host; a report with a seq already applied changes nothing. */
    seq: Type.Integer({ minimum: 1 }),
    /** null: a full report (replaces everything); else the seq this delta applies on top of. */
    baseSeq: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    scannedAt: IsoTime,
    source: Type.Union([Type.Literal('offline'), Type.Literal('online')]),
    /** sha256 of the cab scanned against (offline scans). */
    catalogSha256: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    rebootPending: Type.Boolean(),
    /** Full: every needed and installed update. Delta: the ones added or changed. */
    updates: Type.Array(ReportedUpdate, { maxItems: MAX_REPORT_UPDATES }),
    /** Delta only: update ids no longer needed nor installed (superseded, not applicable). */
    removed: Type.Array(Guid, { maxItems: MAX_REPORT_UPDATES }),
  },
  Closed,
);
export type ScanReport = Static<typeof ScanReport>;

export const ReportAck = Type.Object({
  ackedSeq: Type.Integer(),
  /** applied: stored now; duplicate: this seq was applied before and nothing changed. */
  status: Type.Union([Type.Literal('applied'), Type.Literal('duplicate')]),
});
export type ReportAck = Static<typeof ReportAck>;

// ── action progress ─────────────────────────────────────────────────────────────────────────

export const ACTION_PROGRESS_STATES = ['received', 'running', 'succeeded', 'failed'] as const;
export type ActionProgressState = (typeof ACTION_PROGRESS_STATES)[number];

export const ActionProgress = Type.Object(
  {
    protocol: Type.Literal(AGENT_PROTOCOL_VERSION),
    state: Type.Union([
      Type.Literal('received'),
      Type.Literal('running'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
    ]),
    /** When the agent observed it (received: when the check-in answer arrived). */
    at: IsoTime,
    phase: Type.Optional(
      Type.Union([Type.Literal('search'), Type.Literal('download'), Type.Literal('install'), Type.Literal('reboot')]),
    ),
    updateId: Type.Optional(Guid),
    percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    message: Type.Optional(Type.String({ maxLength: 2000 })),
    hresult: Type.Optional(Type.Union([HResult, Type.Null()])),
  },
  Closed,
);
export type ActionProgress = Static<typeof ActionProgress>;

// ── catalog ─────────────────────────────────────────────────────────────────────────────────

export const CatalogInfo = Type.Object({
  sha256: Type.String(),
  size: Type.Integer(),
  /** Immutable, digest-named: any HTTP cache may keep it. */
  url: Type.String(),
});
export type CatalogInfo = Static<typeof CatalogInfo>;

/** The gateway's error body (the server's own shape): `{ error: { code, message } }`. */
export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });
export type ErrorBody = Static<typeof ErrorBody>;

// ── enrollment tokens and credentials ───────────────────────────────────────────────────────

/**
 * An enrollment token as an administrator copies it: `ET1.<secret>.<fingerprint or "-">`.
 * The secret is what the server checks (it stores `tokenSecretHash(secret)`); the fingerprint is
 * the sha256 of the server's TLS certificate (DER), lower-case hex, which the agent pins; "-" when
 * the server speaks plain HTTP (loopback only).
 *
 * @example encodeEnrollToken({ secret: 'abc', fingerprint: null }) === 'ET1.abc.-'
 */
export interface EnrollToken {
  readonly secret: string;
  readonly fingerprint: string | null;
}

const TOKEN_RE = /^ET1\.([A-Za-z0-9_-]{16,128})\.([0-9a-f]{64}|-)$/;

export function encodeEnrollToken(token: EnrollToken): string {
  return `ET1.${token.secret}.${token.fingerprint ?? '-'}`;
}

/** Parses a token; null when it is not one (the caller says ENROLL_TOKEN_MALFORMED). */
export function decodeEnrollToken(text: string): EnrollToken | null {
  const m = TOKEN_RE.exec(text.trim());
  if (!m) return null;
  return { secret: m[1]!, fingerprint: m[2] === '-' ? null : m[2]! };
}

/** What the server stores for a secret (tokens and credentials are 32 random bytes: no KDF needed). */
export function tokenSecretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Normalises a certificate fingerprint ("AB:CD:…" as Node prints it) to lower-case hex. */
export function normalizeFingerprint(text: string): string {
  return text.replace(/:/g, '').toLowerCase();
}

/** A host credential: `plh1.<hostId>.<secret>`; the host id lets the gateway find the hash to compare. */
export function encodeCredential(hostId: string, secret: string): string {
  return `plh1.${hostId}.${secret}`;
}

export function decodeCredential(text: string): { hostId: string; secret: string } | null {
  const m = /^plh1\.([A-Za-z0-9-]{1,64})\.([A-Za-z0-9_-]{16,128})$/.exec(text);
  return m ? { hostId: m[1]!, secret: m[2]! } : null;
}
