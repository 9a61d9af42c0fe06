/**
 * The shapes the console reads, as the server's OpenAPI document describes them
 * (GET /api/v1/openapi.json). Only the fields the pages use are named.
 */
import type { WsusState } from '../components/state-chart.tsx';

export type WaptState = 'OK' | 'MISSING' | 'PENDING' | 'DISCARDED';
export type StateCounts = Partial<Record<WsusState, number>>;

export type WaptCounts = Partial<Record<WaptState, number>>;

export interface HostRow {
  readonly name: string;
  readonly ring: string | null;
  readonly online: boolean;
  readonly lastSeenAt: string | null;
  readonly lastScanAt: string | null;
  readonly rebootPending: boolean;
  readonly revoked: boolean;
  /** WAPT's states */
  readonly counts: WaptCounts;
  /** WSUS's states */
  readonly wsusCounts: StateCounts;
}

export interface HostUpdateRow {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string | null;
  readonly classification: string | null;
  readonly severity: string | null;
  readonly state: WaptState | null;
  readonly wsusState: WsusState;
  readonly decision: string;
  /** Which rule or ring setting decided (DecisionReason). */
  readonly decidedBy: unknown;
  readonly deferredUntil: string | null;
  readonly hresult: string | null;
  readonly attempts: number;
}

export interface UpdateRow {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string | null;
  readonly classification: string | null;
  readonly severity: string | null;
  readonly releasedAt: string | null;
  readonly products: readonly string[];
  /** Hosts that need it, by decision. */
  readonly decisions: { readonly allowed: number; readonly forbidden: number; readonly deferred: number };
  readonly counts: WaptCounts;
  readonly wsusCounts: StateCounts;
  /** The server's content cache: not-cached | downloading | cached. */
  readonly cache: string;
}

export interface Failure {
  readonly host: string;
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string | null;
  readonly hresult: string;
  readonly hresultName: string | null;
  readonly hresultMeaning: string | null;
  readonly at: string | null;
  readonly attempts: number;
}

export interface Overview {
  readonly all: StateCounts;
  readonly rings: readonly { readonly ring: string; readonly counts: StateCounts; readonly hosts: number }[];
  readonly hosts: number;
  readonly hostsOffline: number;
  readonly hostsRebootPending: number;
  readonly latestFailures: readonly Failure[];
  readonly catalog: { readonly importedAt: string | null; readonly version: string | null };
  readonly content: { readonly bytes: number; readonly files: number };
}

export interface ActionSummary {
  readonly id: string;
  readonly action: string;
  readonly state: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly finishedAt: string | null;
  readonly target: { readonly hosts?: readonly string[]; readonly ring?: string };
}

export interface ActionDetail extends ActionSummary {
  readonly hosts: readonly {
    readonly host: string;
    readonly state: string;
    readonly phase: string | null;
    readonly percent: number | null;
    readonly hresult: string | null;
    readonly message: string | null;
  }[];
}

export interface AuditEntry {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly ip: string | null;
  readonly details: Record<string, unknown>;
}
