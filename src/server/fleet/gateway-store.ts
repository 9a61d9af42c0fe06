/**
 * The agent gateway's store port (src/server/gateway/store.ts) over the server's tables: hosts,
 * host_updates, enroll_tokens, actions and action_hosts. Each write is one job of the group commit
 * (group-commit.ts: many agents' writes share a transaction, each answered after it committed), so
 * an enrollment consumes its token use and creates the host together, and a report is applied
 * whole or not at all; check-in touches and action progress are batched per turn of the event loop
 * (write-batches.ts). Enrollments are audited (`agent:<host>`); reports and progress are data, not
 * changes by people: they go to the events outbox only.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ActionProgress, AgentAction, ReportedUpdate, ScanReport } from '../../domain/agent-protocol.ts';
import type { StoreDialect } from '../../store/open.ts';
import type { Database } from '../../store/schema.ts';
import { appendAudit, appendEvent } from '../../store/server/audit-repo.ts';
import {
  findHostById,
  findHostByName,
  hostKey,
  hostUpdateRows,
  hostUpdateRowsOf,
  insertHost,
  queuedActionsOfHosts,
  findHostsByIds,
  type ActionRow,
  replaceHostUpdates,
  updateHost,
  type HostRow,
  type HostUpdateRow,
} from '../../store/server/fleet-repo.ts';
import {
  classifyReport,
  type AgentHost,
  type EnrollInput,
  type EnrollRefusal,
  type GatewayStore,
  type HostInventory,
  type ReportOutcome,
} from '../gateway/store.ts';
import { batchLoader } from './batch-loader.ts';
import { createGroupCommit } from './group-commit.ts';
import { progressWriter, touchWriter } from './write-batches.ts';

export { ONLINE_GRACE_MS } from './write-batches.ts';

export interface GatewayStoreDeps {
  readonly db: Kysely<Database>;
  /** The store's dialect (the rows' upsert is written by hand for each). */
  readonly dialect: StoreDialect;
  /** Wakes the live views after a commit. */
  readonly notify: () => void;
  readonly onReport?: () => void;
}

const agentHost = (h: HostRow): AgentHost => ({
  id: h.id,
  name: h.name,
  ring: h.ring ?? '',
  credentialHash: h.credential_hash ?? '',
  revokedAt: h.revoked_at,
});

/** What the server keeps of one reported update (three things apart: applicability, delivery, attempts). */
export function hostUpdateRow(
  key: string,
  u: ReportedUpdate,
  rebootPending: boolean,
  previous: HostUpdateRow | undefined,
  now: string,
): HostUpdateRow {
  const attempt = u.lastAttempt;
  const failed = attempt !== null && (attempt.resultCode === 'failed' || attempt.resultCode === 'aborted');
  const installedNow =
    attempt?.phase === 'install' &&
    (attempt.resultCode === 'succeeded' || attempt.resultCode === 'succeededWithErrors');
  const delivery =
    u.applicability === 'installed'
      ? 'installed'
      : installedNow && rebootPending
        ? 'installed-pending-reboot'
        : failed
          ? 'failed'
          : u.downloaded
            ? 'downloaded'
            : 'none';
  const installed = delivery === 'installed' || delivery === 'installed-pending-reboot';
  return {
    host_key: key,
    update_id: u.updateId.toLowerCase(),
    revision: u.revisionNumber,
    kb: u.kbs[0] ?? null,
    title: previous?.title ?? null,
    applicability: u.applicability,
    delivery,
    decision: previous?.decision ?? null,
    decided_by: previous?.decided_by ?? null,
    deferred_until: previous?.deferred_until ?? null,
    hresult: failed ? (attempt?.hresult ?? null) : null,
    attempts: attempt?.attempts ?? 0,
    last_attempt_at: attempt?.at ?? null,
    installed_at: installed ? (previous?.installed_at ?? (installedNow ? attempt!.at : now)) : null,
    reported_at: now,
    report_json: impliedByColumns(u, delivery)
      ? IMPLIED_REPORT
      : JSON.stringify({ ...u, updateId: u.updateId.toLowerCase() }),
  };
}

/**
 * report_json of a row whose columns already say everything the agent reported (no attempt, at
 * most one KB, `downloaded` readable from the delivery): most rows. The agent's whole update was
 * most of a row's bytes, and SQLite's cost of a new inventory grows with its bytes.
 */
export const IMPLIED_REPORT = '';

function impliedByColumns(u: ReportedUpdate, delivery: string): boolean {
  return u.lastAttempt === null && u.kbs.length <= 1 && u.downloaded === (delivery === 'downloaded');
}

/** The update as the agent reported it, from its row (the inverse of hostUpdateRow's report_json). */
export function reportedUpdateOf(row: HostUpdateRow): ReportedUpdate {
  if (row.report_json !== IMPLIED_REPORT) return JSON.parse(row.report_json) as ReportedUpdate;
  return {
    updateId: row.update_id,
    revisionNumber: Number(row.revision),
    kbs: row.kb === null ? [] : [row.kb],
    applicability: row.applicability as ReportedUpdate['applicability'],
    downloaded: row.delivery === 'downloaded',
    lastAttempt: null,
  };
}

/**
 * What a full report's rows are a function of (with the rows they replace: applying it twice
 * gives the same rows), as a digest: equal digests, nothing to write. The agent's own order and
 * spelling count, so a report that differs only in those takes the comparing path (still right).
 */
export function inventoryDigest(report: Pick<ScanReport, 'updates' | 'rebootPending'>): string {
  return createHash('sha256')
    .update(report.rebootPending ? '1' : '0')
    .update(JSON.stringify(report.updates))
    .digest('base64url');
}

/** The same stored facts, whenever the row was reported (`reported_at`: when it last changed). */
function sameHostUpdate(next: HostUpdateRow, previous: HostUpdateRow | undefined): boolean {
  if (!previous) return false;
  for (const key of Object.keys(next) as (keyof HostUpdateRow)[]) {
    if (key !== 'reported_at' && next[key] !== previous[key]) return false;
  }
  return true;
}

export function sqlGatewayStore(deps: GatewayStoreDeps): GatewayStore {
  const { db } = deps;
  const commits = createGroupCommit(db);
  // Point reads of many requests at once (authentication, a woken check-in's actions) share queries.
  const hosts = batchLoader(
    async (ids: readonly string[]) => new Map((await findHostsByIds(db, ids)).map((h) => [h.id, h])),
  );
  const queued = batchLoader(async (ids: readonly string[]) => {
    const out = new Map<string, ActionRow[]>();
    for (const row of await queuedActionsOfHosts(db, ids)) {
      let list = out.get(row.host_id);
      if (!list) out.set(row.host_id, (list = []));
      list.push(row);
    }
    return out;
  });
  const touch = touchWriter(commits);
  const progressOf = progressWriter(commits, deps.dialect);
  return {
    async enroll(input: EnrollInput) {
      const now = input.now.toISOString();
      const result = await commits.run(
        async (trx): Promise<{ ok: true; host: AgentHost } | { ok: false; code: EnrollRefusal }> => {
          const token = await trx
            .selectFrom('enroll_tokens')
            .selectAll()
            .where('secret_hash', '=', input.tokenHash)
            .executeTakeFirst();
          if (!token || token.revoked_at) return { ok: false, code: 'ENROLL_TOKEN_UNKNOWN' };
          if (token.expires_at <= now) return { ok: false, code: 'ENROLL_TOKEN_EXPIRED' };
          if (token.single_use === 1 && token.uses > 0) return { ok: false, code: 'ENROLL_TOKEN_USED_UP' };
          const key = hostKey(input.hostName);
          const existing = await findHostByName(trx, key);
          if (existing?.revoked_at) return { ok: false, code: 'ENROLL_HOST_REVOKED' };
          // Conditional: two agents racing with one single-use token end with one enrolled.
          const used = await trx
            .updateTable('enroll_tokens')
            .set((eb) => ({ uses: eb('uses', '+', 1), last_used_at: now }))
            .where('id', '=', token.id)
            .where((eb) => eb.or([eb('single_use', '=', 0), eb('uses', '=', 0)]))
            .executeTakeFirst();
          if (Number(used.numUpdatedRows) === 0) return { ok: false, code: 'ENROLL_TOKEN_USED_UP' };
          let host: HostRow;
          if (existing) {
            // Re-enrollment of a known host (re-imaged, lost its credential): same id, new credential.
            host = {
              ...existing,
              name: input.hostName,
              ring: token.ring,
              credential_hash: input.credentialHash,
              agent_version: input.agentVersion,
              enroll_token_id: token.id,
              last_seen_at: now,
            };
            await updateHost(trx, key, {
              name: host.name,
              ring: host.ring,
              credential_hash: host.credential_hash,
              agent_version: host.agent_version,
              enroll_token_id: token.id,
              last_seen_at: now,
            });
          } else {
            host = {
              key,
              id: input.hostId,
              name: input.hostName,
              ring: token.ring,
              credential_hash: input.credentialHash,
              agent_version: input.agentVersion,
              boot_id: null,
              enrolled_at: now,
              enroll_token_id: token.id,
              revoked_at: null,
              last_seen_at: now,
              online_until: null,
              last_scan_at: null,
              reboot_pending: 0,
              facts_json: '{}',
              report_seq: 0,
              inventory_digest: null,
            };
            await insertHost(trx, host);
          }
          await appendAudit(trx, {
            at: now,
            actor: `agent:${input.hostName}`,
            action: existing ? 'host.re-enroll' : 'host.enroll',
            target: key,
            details: { ring: token.ring, enrollToken: token.id },
            ip: null,
          });
          await appendEvent(trx, now, 'host.enrolled', { host: input.hostName, ring: token.ring });
          return { ok: true, host: agentHost(host) };
        },
      );
      if (result.ok) deps.notify();
      return result;
    },

    async host(hostId) {
      const h = await hosts.load(hostId);
      return h ? agentHost(h) : null;
    },

    touch: (hostId, now, bootId) => touch({ hostId, at: now, bootId }),

    async ackedReportSeq(hostId) {
      return (await hosts.load(hostId))?.report_seq ?? 0;
    },

    async applyReport(hostId: string, report: ScanReport, now: Date): Promise<ReportOutcome> {
      const at = now.toISOString();
      const full = report.baseSeq === null;
      // Outside the transaction: the batch's other jobs need not wait for it.
      const digest = full ? inventoryDigest(report) : null;
      const outcome = await commits.run(async (trx): Promise<ReportOutcome> => {
        const host = await findHostById(trx, hostId);
        if (!host) throw new Error(`unknown host ${hostId}`);
        const verdict = classifyReport(host.report_seq, report);
        if (verdict !== 'apply') return { status: verdict, ackedSeq: host.report_seq };
        // The same full report as the one the rows came from changes none of them (applying a
        // report is idempotent): nothing to read or compare. Most of a fleet's full reports are that.
        if (digest === null || host.inventory_digest !== digest) {
          const ids = full ? null : report.updates.map((u) => u.updateId.toLowerCase());
          // A delta reads only the rows it names.
          const previous = new Map(
            (ids === null ? await hostUpdateRows(trx, host.key) : await hostUpdateRowsOf(trx, host.key, ids)).map(
              (r) => [r.update_id, r],
            ),
          );
          const rows = report.updates.map((u) =>
            hostUpdateRow(host.key, u, report.rebootPending, previous.get(u.updateId.toLowerCase()), at),
          );
          // Only what changed is written: a fleet's reports mostly repeat what the server holds.
          const changed = rows.filter((r) => !sameHostUpdate(r, previous.get(r.update_id)));
          const reported = new Set(rows.map((r) => r.update_id));
          const removed = full
            ? [...previous.keys()].filter((id) => !reported.has(id))
            : report.removed.map((id) => id.toLowerCase());
          await replaceHostUpdates(trx, deps.dialect, host.key, changed, removed);
        }
        await updateHost(trx, host.key, {
          report_seq: report.seq,
          last_scan_at: report.scannedAt,
          reboot_pending: report.rebootPending ? 1 : 0,
          // After a delta the rows are no one full report's: unknown until the next full report.
          inventory_digest: digest,
        });
        await appendEvent(trx, at, 'host.report', { host: host.name, seq: report.seq });
        return { status: 'applied', ackedSeq: report.seq };
      });
      if (outcome.status === 'applied') {
        deps.onReport?.();
        deps.notify();
      }
      return outcome;
    },

    async inventory(hostId): Promise<HostInventory> {
      const host = await findHostById(db, hostId);
      if (!host) return { ackedSeq: 0, scannedAt: null, rebootPending: false, updates: new Map() };
      const rows = await hostUpdateRows(db, host.key);
      return {
        ackedSeq: host.report_seq,
        scannedAt: host.last_scan_at,
        rebootPending: host.reboot_pending === 1,
        updates: new Map(rows.map((r) => [r.update_id, reportedUpdateOf(r)])),
      };
    },

    async pendingActions(hostId): Promise<readonly AgentAction[]> {
      const rows = (await queued.load(hostId)) ?? [];
      return rows.map((a) => {
        const updateIds = a.update_ids_json ? (JSON.parse(a.update_ids_json) as string[]) : undefined;
        return {
          id: a.id,
          action: a.kind as AgentAction['action'],
          createdAt: a.created_at,
          ...(updateIds ? { updateIds } : {}),
        };
      });
    },

    async recordProgress(hostId: string, actionId: string, progress: ActionProgress, now: Date): Promise<boolean> {
      const ok = await progressOf({ hostId, actionId, progress, at: now });
      if (ok) deps.notify();
      return ok;
    },
  };
}
