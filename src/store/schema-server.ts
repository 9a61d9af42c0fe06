/**
 * Tables of the fleet server, as Kysely types. Created by migrations/0003-server.ts.
 *
 * Times are ISO-8601 UTC text; booleans are 0/1. Secrets are never stored: sessions, API tokens,
 * enrollment tokens and agent credentials keep a SHA-256 of a random 256-bit secret (a slow KDF
 * buys nothing for secrets with that much entropy; passwords get scrypt — docs/decisions.md).
 */
import type { Generated } from 'kysely';

export interface ServerSettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface UsersTable {
  name: string;
  /** Role: admin | operator | viewer. */
  role: string;
  /** `scrypt$N$r$p$salt$hash` (src/server/auth/password.ts). */
  password_hash: string;
  created_at: string;
  /** The actor who created the user (`cli:root`, `user:alice`). */
  created_by: string;
  disabled_at: string | null;
}

export interface SessionsTable {
  /** SHA-256 (hex) of the session cookie's value. */
  id_hash: string;
  user_name: string;
  /** Sent back by the console in X-CSRF-Token on every unsafe request. */
  csrf_token: string;
  created_at: string;
  expires_at: string;
  last_seen_at: string;
  ip: string | null;
}

export interface ApiTokensTable {
  /** Public part of the token (`plt_<id>_<secret>`), shown in listings. */
  id: string;
  name: string;
  role: string;
  secret_hash: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface EnrollTokensTable {
  id: string;
  secret_hash: string;
  /** The ring an agent enrolled with this token joins. */
  ring: string;
  single_use: number;
  uses: number;
  created_at: string;
  created_by: string;
  expires_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface HostsTable {
  /** Lower-cased name: the identity (Windows host names are case-insensitive). */
  key: string;
  /** Host id inside the agent credential `plh1.<id>.<secret>`. */
  id: string;
  /** The name as the agent enrolled it. */
  name: string;
  /** Ring given at enrollment; null: the rings' member patterns decide. */
  ring: string | null;
  /** SHA-256 of the agent credential's secret. */
  credential_hash: string | null;
  agent_version: string | null;
  /** The host's boot id as the agent last said (a change means it rebooted). */
  boot_id: string | null;
  enrolled_at: string;
  enroll_token_id: string | null;
  revoked_at: string | null;
  last_seen_at: string | null;
  /** The agent counts as online until then (its check-in interval plus grace). */
  online_until: string | null;
  last_scan_at: string | null;
  reboot_pending: number;
  /** OS, agent version, …: what the agent says about its host. */
  facts_json: string;
  /** Sequence of the last report applied (reports are idempotent: older or equal seqs change nothing). */
  report_seq: number;
  /**
   * Digest of the full report whose rows host_updates holds (its updates and reboot flag), or null
   * when unknown (before the first report, after a delta): a full report with the same digest
   * changes no row, so the gateway neither reads nor writes them (migration 0006).
   */
  inventory_digest: string | null;
}

export interface HostUpdatesTable {
  host_key: string;
  update_id: string;
  revision: number | null;
  kb: string | null;
  title: string | null;
  /** Applicability (src/domain/policy): needed | installed | not-applicable | superseded. */
  applicability: string;
  /** HostDelivery: none | downloaded | installed | installed-pending-reboot | failed. */
  delivery: string;
  /** allowed | forbidden | deferred; null until the policy has decided. */
  decision: string | null;
  /** Which rule or ring setting decided (shown to people). */
  decided_by: string | null;
  deferred_until: string | null;
  /** Of the last failed attempt, `0x8024…`. */
  hresult: string | null;
  attempts: number;
  last_attempt_at: string | null;
  installed_at: string | null;
  reported_at: string;
  /**
   * The agent protocol's ReportedUpdate as last received, or '' when the columns above say all of
   * it (no attempt, at most one KB; gateway-store.ts reportedUpdateOf rebuilds it).
   */
  report_json: string;
}

export interface RulesTable {
  id: string;
  /** allow | forbid. */
  action: string;
  /** The rule's match criteria (kbs, updateIds, classifications, …) as JSON. */
  spec_json: string;
  comment: string | null;
  created_at: string;
  created_by: string;
}

export interface RingsTable {
  name: string;
  /** Order of promotion: pilot (0) → broad (1) → … */
  position: number;
  /** The ring's settings (membership, defaultAllow, windows, …) as JSON. */
  spec_json: string;
  updated_at: string;
  updated_by: string;
}

export interface PromotionOverridesTable {
  update_id: string;
  ring: string;
  /** promote | halt. */
  action: string;
  by: string;
  at: string;
}

export interface ActionsTable {
  id: string;
  /** scan | download | install | reboot. */
  kind: string;
  /** {"hosts":[…]} or {"ring":"…"} as JSON. */
  target_json: string;
  /** Update ids the action is limited to, as JSON; null: whatever policy allows. */
  update_ids_json: string | null;
  /** pending | running | done | failed. */
  state: string;
  created_at: string;
  created_by: string;
  finished_at: string | null;
}

export interface ActionHostsTable {
  action_id: string;
  host_key: string;
  /** queued (not yet received) | received | running | succeeded | failed. */
  state: string;
  phase: string | null;
  percent: number | null;
  hresult: string | null;
  message: string | null;
  /** Every progress report of the agent, in arrival order (JSON array). */
  progress_json: string;
  updated_at: string;
}

export interface AuditTable {
  id: Generated<number>;
  at: string;
  /** `user:alice`, `token:ci`, `agent:web01`, `cli:root`. */
  actor: string;
  /** `user.create`, `rule.delete`, `action.create`, … */
  action: string;
  target: string | null;
  details_json: string;
  /** The caller's address (null for CLI changes). */
  ip: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  at: string;
  kind: string;
  data_json: string;
}

export interface ServerTables {
  server_settings: ServerSettingsTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  enroll_tokens: EnrollTokensTable;
  hosts: HostsTable;
  host_updates: HostUpdatesTable;
  rules: RulesTable;
  rings: RingsTable;
  promotion_overrides: PromotionOverridesTable;
  actions: ActionsTable;
  action_hosts: ActionHostsTable;
  audit: AuditTable;
  events: EventsTable;
}
