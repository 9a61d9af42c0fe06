/**
 * What the agent gateway needs from the store, as one narrow port, and an in-memory implementation
 * of it (tests, benchmarks of the HTTP layer). The server composes the gateway with an adapter over
 * its own tables (hosts, host_updates, actions); the gateway never sees SQL.
 *
 * Every method is atomic on its own: an enrollment consumes a token use and creates the host in one
 * step; a report is applied whole or not at all; a resent report (same seq) changes nothing.
 */
import type { ActionProgress, AgentAction, ReportedUpdate, ScanReport } from '../../domain/agent-protocol.ts';

export const ENROLL_REFUSALS = [
  'ENROLL_TOKEN_UNKNOWN',
  'ENROLL_TOKEN_EXPIRED',
  'ENROLL_TOKEN_USED_UP',
  'ENROLL_HOST_REVOKED',
] as const;
export type EnrollRefusal = (typeof ENROLL_REFUSALS)[number];

export interface EnrollInput {
  readonly tokenHash: string;
  readonly hostName: string;
  readonly hostId: string;
  readonly credentialHash: string;
  readonly agentVersion: string;
  readonly now: Date;
}

export interface AgentHost {
  readonly id: string;
  readonly name: string;
  readonly ring: string;
  readonly credentialHash: string;
  readonly revokedAt: string | null;
}

export type ReportOutcome =
  | { readonly status: 'applied' | 'duplicate'; readonly ackedSeq: number }
  /** A delta whose base is not the last applied report: the agent must send a full one. */
  | { readonly status: 'base-mismatch'; readonly ackedSeq: number };

/** One host's view of its updates as the last applied reports left it. */
export interface HostInventory {
  readonly ackedSeq: number;
  readonly scannedAt: string | null;
  readonly rebootPending: boolean;
  readonly updates: ReadonlyMap<string, ReportedUpdate>;
}

export interface GatewayStore {
  /** Consumes one use of the token and creates (or re-keys, same name) the host; or says why not. */
  enroll(
    input: EnrollInput,
  ): Promise<{ readonly ok: true; readonly host: AgentHost } | { readonly ok: false; readonly code: EnrollRefusal }>;
  host(hostId: string): Promise<AgentHost | null>;
  /** Marks the host seen (online) at `now`. */
  touch(hostId: string, now: Date, bootId: string | null): Promise<void>;
  ackedReportSeq(hostId: string): Promise<number>;
  applyReport(hostId: string, report: ScanReport, now: Date): Promise<ReportOutcome>;
  inventory(hostId: string): Promise<HostInventory>;
  /** Actions for this host that it has not yet acknowledged receiving, oldest first. */
  pendingActions(hostId: string): Promise<readonly AgentAction[]>;
  /** Records progress; false when the action is unknown or not addressed to this host. */
  recordProgress(hostId: string, actionId: string, progress: ActionProgress, now: Date): Promise<boolean>;
}

interface MemoryHost extends AgentHost {
  ackedSeq: number;
  scannedAt: string | null;
  rebootPending: boolean;
  updates: Map<string, ReportedUpdate>;
  lastSeenAt: string | null;
}

export interface MemoryEnrollToken {
  readonly hash: string;
  readonly ring: string;
  readonly expiresAt: string | null;
  /** null: unlimited. */
  usesLeft: number | null;
}

export interface MemoryAction {
  readonly id: string;
  readonly action: AgentAction['action'];
  readonly hostIds: ReadonlySet<string>;
  readonly createdAt: string;
  readonly updateIds?: readonly string[];
  /** Per host: progress in arrival order. */
  readonly progress: Map<string, ActionProgress[]>;
}

/** Applies a report to an inventory (pure); used by every store implementation. */
export function mergeReport(
  current: ReadonlyMap<string, ReportedUpdate>,
  report: ScanReport,
): Map<string, ReportedUpdate> {
  const next = report.baseSeq === null ? new Map<string, ReportedUpdate>() : new Map(current);
  for (const id of report.removed) next.delete(id.toLowerCase());
  for (const u of report.updates) next.set(u.updateId.toLowerCase(), { ...u, updateId: u.updateId.toLowerCase() });
  return next;
}

/** Decides what a report does given the last applied seq (pure). */
export function classifyReport(
  ackedSeq: number,
  report: Pick<ScanReport, 'seq' | 'baseSeq'>,
): 'apply' | 'duplicate' | 'base-mismatch' {
  if (report.seq <= ackedSeq) return 'duplicate';
  if (report.baseSeq !== null && report.baseSeq !== ackedSeq) return 'base-mismatch';
  return 'apply';
}

/** The in-memory store: state lives as long as the process. */
export class MemoryGatewayStore implements GatewayStore {
  readonly hosts = new Map<string, MemoryHost>();
  readonly tokens = new Map<string, MemoryEnrollToken>();
  readonly actions = new Map<string, MemoryAction>();
  private actionSeq = 0;

  addEnrollToken(token: MemoryEnrollToken): void {
    this.tokens.set(token.hash, token);
  }

  /** What the server's POST /api/v1/actions does, for tests of the gateway alone. */
  createAction(
    action: AgentAction['action'],
    hostIds: readonly string[],
    now: Date,
    updateIds?: readonly string[],
  ): MemoryAction {
    const a: MemoryAction = {
      id: `act-${++this.actionSeq}`,
      action,
      hostIds: new Set(hostIds),
      createdAt: now.toISOString(),
      progress: new Map(),
      ...(updateIds ? { updateIds } : {}),
    };
    this.actions.set(a.id, a);
    return a;
  }

  revoke(hostId: string, now: Date): void {
    const h = this.hosts.get(hostId);
    if (h) this.hosts.set(hostId, { ...h, revokedAt: now.toISOString() });
  }

  async enroll(input: EnrollInput): Promise<{ ok: true; host: AgentHost } | { ok: false; code: EnrollRefusal }> {
    const token = this.tokens.get(input.tokenHash);
    if (!token) return { ok: false, code: 'ENROLL_TOKEN_UNKNOWN' };
    if (token.expiresAt !== null && Date.parse(token.expiresAt) <= input.now.getTime())
      return { ok: false, code: 'ENROLL_TOKEN_EXPIRED' };
    if (token.usesLeft !== null && token.usesLeft <= 0) return { ok: false, code: 'ENROLL_TOKEN_USED_UP' };
    const existing = [...this.hosts.values()].find((h) => h.name.toLowerCase() === input.hostName.toLowerCase());
    if (existing?.revokedAt) return { ok: false, code: 'ENROLL_HOST_REVOKED' };
    if (token.usesLeft !== null) token.usesLeft--;
    if (existing) this.hosts.delete(existing.id);
    const host: MemoryHost = {
      id: existing?.id ?? input.hostId,
      name: input.hostName,
      ring: token.ring,
      credentialHash: input.credentialHash,
      revokedAt: null,
      ackedSeq: existing?.ackedSeq ?? 0,
      scannedAt: existing?.scannedAt ?? null,
      rebootPending: existing?.rebootPending ?? false,
      updates: existing?.updates ?? new Map(),
      lastSeenAt: input.now.toISOString(),
    };
    this.hosts.set(host.id, host);
    return { ok: true, host: publicHost(host) };
  }

  async host(hostId: string): Promise<AgentHost | null> {
    const h = this.hosts.get(hostId);
    return h ? publicHost(h) : null;
  }

  async touch(hostId: string, now: Date): Promise<void> {
    const h = this.hosts.get(hostId);
    if (h) h.lastSeenAt = now.toISOString();
  }

  async ackedReportSeq(hostId: string): Promise<number> {
    return this.hosts.get(hostId)?.ackedSeq ?? 0;
  }

  async applyReport(hostId: string, report: ScanReport): Promise<ReportOutcome> {
    const h = this.hosts.get(hostId);
    if (!h) throw new Error(`unknown host ${hostId}`);
    const verdict = classifyReport(h.ackedSeq, report);
    if (verdict === 'duplicate') return { status: 'duplicate', ackedSeq: h.ackedSeq };
    if (verdict === 'base-mismatch') return { status: 'base-mismatch', ackedSeq: h.ackedSeq };
    h.updates = mergeReport(h.updates, report);
    h.ackedSeq = report.seq;
    h.scannedAt = report.scannedAt;
    h.rebootPending = report.rebootPending;
    return { status: 'applied', ackedSeq: h.ackedSeq };
  }

  async inventory(hostId: string): Promise<HostInventory> {
    const h = this.hosts.get(hostId);
    return {
      ackedSeq: h?.ackedSeq ?? 0,
      scannedAt: h?.scannedAt ?? null,
      rebootPending: h?.rebootPending ?? false,
      updates: new Map(h?.updates ?? []),
    };
  }

  async pendingActions(hostId: string): Promise<readonly AgentAction[]> {
    return [...this.actions.values()]
      .filter((a) => a.hostIds.has(hostId) && !(a.progress.get(hostId) ?? []).length)
      .map((a) => ({
        id: a.id,
        action: a.action,
        createdAt: a.createdAt,
        ...(a.updateIds ? { updateIds: [...a.updateIds] } : {}),
      }));
  }

  async recordProgress(hostId: string, actionId: string, progress: ActionProgress): Promise<boolean> {
    const a = this.actions.get(actionId);
    if (!a || !a.hostIds.has(hostId)) return false;
    const list = a.progress.get(hostId) ?? [];
    // A resent progress report (the agent did not see our answer) is recorded once.
    if (!list.some((p) => p.state === progress.state && p.at === progress.at && p.percent === progress.percent))
      list.push(progress);
    a.progress.set(hostId, list);
    return true;
  }
}

function publicHost(h: MemoryHost): AgentHost {
  return { id: h.id, name: h.name, ring: h.ring, credentialHash: h.credentialHash, revokedAt: h.revokedAt };
}
