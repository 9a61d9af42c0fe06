/**
 * Composes the agent gateway (src/server/gateway, the fleet helper's) with the server: its store
 * port over our tables, the policy each agent gets at check-in (from the pure policy), the
 * catalog cab and the content cache. Each agent's policy is decided for its host alone and kept
 * until what it depends on changes (host-policy.ts): thousands of agents checking in must not each
 * recompute the whole fleet's decisions.
 */
import { createAgentGateway, type AgentGateway, type CatalogFile, type GatewayDeps } from '../gateway/gateway.ts';
import type { ServerDeps } from '../context.ts';
import { sqlGatewayStore } from './gateway-store.ts';
import { createHostPolicies } from './host-policy.ts';

export interface AgentFiles {
  readonly catalog?: () => Promise<CatalogFile | null>;
  readonly content?: (digest: string) => Promise<{ readonly path: string; readonly size: number } | null>;
  /** An update's files through the content cache (the gateway checks the host may install it). */
  readonly updateContent?: GatewayDeps['updateContent'];
  readonly onContentServed?: GatewayDeps['onContentServed'];
}

export function createServerGateway(deps: ServerDeps, files: AgentFiles = {}): AgentGateway {
  const policies = createHostPolicies({ db: deps.store.db, now: deps.now });
  const gateway = createAgentGateway({
    store: sqlGatewayStore({
      db: deps.store.db,
      dialect: deps.store.dialect,
      notify: () => deps.feed.notify(),
      onReport: () => deps.metrics.reportsIngested.inc(),
    }),
    now: deps.now,
    policyFor: (host, options) => policies.policyFor(host, options),
    catalog: files.catalog ?? (async () => null),
    content: files.content ?? (async () => null),
    ...(files.updateContent ? { updateContent: files.updateContent } : {}),
    onContentServed: (bytes) => {
      deps.metrics.contentServedBytes.inc({}, bytes);
      files.onContentServed?.(bytes);
    },
  });
  // An action is created after the rule that makes it useful (allow, then install): the check-ins
  // it wakes must see that rule, not rules read a moment before it.
  return { ...gateway, wake: (hostIds, action) => (policies.invalidate(), gateway.wake(hostIds, action)) };
}
