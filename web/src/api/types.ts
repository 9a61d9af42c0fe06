/**
 * The shapes the console reads, as the server's OpenAPI document describes them
 * (GET /api/v1/openapi.json). Only the fields the pages use are named.
 */
import type { WsusState } from '../components/state-chart.tsx';

export type WaptState = 'OK' | 'MISSING' | 'PENDING' | 'DISCARDED';
export type StateCounts = Partial<Record<WsusState, number>>;

export interface HostRow {
  readonly name: string;
  readonly ring: string | null;
  readonly online: boolean;
  readonly lastSeenAt: string | null;
  readonly lastScanAt: string | null;
  readonly rebootPending: boolean;
  readonly counts: StateCounts;
}

export interface HostUpdateRow {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly classification: string | null;
  readonly severity: string | null;
  readonly state: WaptState;
  readonly wsusState: WsusState;
  readonly decision: string;
  readonly deferredUntil: string | null;
  readonly hresult: string | null;
  readonly hresultName?: string | null;
  readonly hresultMeaning?: string | null;
  readonly attempts: number;
}

export interface UpdateRow {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly classification: string | null;
  readonly severity: string | null;
  readonly releasedAt: string | null;
  readonly decision: string;
  readonly decidedBy?: string | null;
  readonly counts: StateCounts;
  readonly cachedAt: string | null;
}

export interface Failure {
  readonly host: string;
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly hresult: string;
  readonly hresultName?: string | null;
  readonly hresultMeaning?: string | null;
  readonly at: string | null;
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

export interface Action {
  readonly id: string;
  readonly action: string;
  readonly createdAt: string;
  readonly createdBy?: string;
  readonly status: string;
  readonly hosts: readonly { readonly name: string; readonly status: string; readonly percent?: number | null; readonly message?: string | null }[];
}

export interface AuditEntry {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target?: string | null;
  readonly from?: string | null;
  readonly details?: unknown;
}
