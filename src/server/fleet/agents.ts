/**
 * Composes the agent gateway (src/server/gateway, the fleet helper's) with the server: its store
 * port over our tables, the policy each agent gets at check-in (from the pure policy), the
 * catalog cab and the content cache. The composed fleet view is reused for a couple of seconds:
 * thousands of agents checking in must not each recompute the whole fleet's decisions.
 */
import type { AgentPolicy } from '../../domain/agent-protocol.ts';
import { WEEKDAYS } from '../../domain/policy/index.ts';
import { createAgentGateway, type AgentGateway, type CatalogFile, type GatewayDeps } from '../gateway/gateway.ts';
import type { AgentHost } from '../gateway/store.ts';
import type { ServerDeps } from '../context.ts';
import { sqlGatewayStore } from './gateway-store.ts';
import { loadFleet, type FleetView } from './policy-view.ts';

/** How long one computed fleet view answers check-ins (policy changes reach agents within this). */
export const FLEET_VIEW_TTL_MS = 2_000;
/** Hosts in no ring scan daily, WSUS's default detection frequency is 22 h. */
const DEFAULT_SCAN_INTERVAL_S = 22 * 3600;

export interface AgentFiles {
  readonly catalog?: () => Promise<CatalogFile | null>;
  readonly content?: (digest: string) => Promise<{ readonly path: string; readonly size: number } | null>;
  /** An update's files through the content cache (the gateway checks the host may install it). */
  readonly updateContent?: GatewayDeps['updateContent'];
  readonly onContentServed?: GatewayDeps['onContentServed'];
}

export function memoizedFleet(
  deps: Pick<ServerDeps, 'store' | 'now' | 'cacheStateOf'>,
  ttlMs = FLEET_VIEW_TTL_MS,
): (() => Promise<FleetView>) & { invalidate(): void } {
  let cached: { at: number; view: Promise<FleetView> } | undefined;
  const get = () => {
    const t = deps.now().getTime();
    if (!cached || t - cached.at >= ttlMs || t < cached.at) {
      const view = loadFleet(deps.store.db, deps.cacheStateOf);
      cached = { at: t, view };
      view.catch(() => (cached = undefined));
    }
    return cached.view;
  };
  return Object.assign(get, { invalidate: () => void (cached = undefined) });
}

export async function agentPolicy(fleet: FleetView, host: AgentHost, now: Date): Promise<AgentPolicy> {
  const facts = [...fleet.facts.values()].find((f) => f.name.toLowerCase() === host.name.toLowerCase());
  const ring = fleet.policy.ringOf({ name: host.name, ring: host.ring || null });
  const allowed = facts
    ? fleet.policy
        .hostStates(facts, now)
        .filter((s) => s.applicability === 'needed' && s.decision.kind === 'allowed')
        .map((s) => s.updateId)
    : [];
  return {
    ring: ring?.name ?? host.ring,
    scanIntervalSeconds: ring ? ring.scanIntervalMinutes * 60 : DEFAULT_SCAN_INTERVAL_S,
    scanSource: 'offline',
    windows: (ring?.maintenanceWindows ?? []).map((w) => ({
      weekdays: w.weekdays.map((d) => WEEKDAYS.indexOf(d)),
      start: w.start,
      durationMinutes: w.durationMinutes,
      timeZone: w.timeZone,
    })),
    reboot: ring?.rebootPolicy ?? 'if-required',
    installAtShutdown: ring?.installAtShutdown ?? false,
    directDownload: ring?.directDownload ?? false,
    allowedUpdateIds: allowed,
  };
}

export function createServerGateway(deps: ServerDeps, files: AgentFiles = {}): AgentGateway {
  const fleet = memoizedFleet(deps);
  const gateway = createAgentGateway({
    store: sqlGatewayStore({
      db: deps.store.db,
      notify: () => deps.feed.notify(),
      onReport: () => deps.metrics.reportsIngested.inc(),
    }),
    now: deps.now,
    policyFor: async (host) => agentPolicy(await fleet(), host, deps.now()),
    catalog: files.catalog ?? (async () => null),
    content: files.content ?? (async () => null),
    ...(files.updateContent ? { updateContent: files.updateContent } : {}),
    onContentServed: (bytes) => {
      deps.metrics.contentServedBytes.inc({}, bytes);
      files.onContentServed?.(bytes);
    },
  });
  // An action is created after the rule that makes it useful (allow, then install): the check-ins
  // it wakes must see that rule, not a fleet view computed a moment before it.
  return { ...gateway, wake: (hostIds) => (fleet.invalidate(), gateway.wake(hostIds)) };
}
