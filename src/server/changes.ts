/**
 * Every change goes through `commitChange`: the change, its audit entry (who, when, what, from
 * where) and its event for the live views are written in one transaction, and only after it
 * commits are the live views woken and the request answered 2xx — so a `kill -9` at any moment
 * loses nothing that was acknowledged, and no change is ever unaudited.
 */
import type { Kysely, Transaction } from 'kysely';
import type { FastifyRequest } from 'fastify';
import type { Database } from '../store/schema.ts';
import { appendAudit, appendEvent } from '../store/server/audit-repo.ts';
import { actorOf } from './auth/roles.ts';
import type { ServerDeps } from './context.ts';
import { ApiError } from './errors.ts';

export interface Actor {
  /** `user:alice`, `token:ci`, `agent:web01`, `cli:root`. */
  readonly actor: string;
  /** Caller's address; null for CLI changes. */
  readonly ip: string | null;
}

export interface Change {
  /** `user.create`, `rule.delete`, … (docs: README "Audit"). */
  readonly action: string;
  readonly target: string | null;
  readonly details?: Readonly<Record<string, unknown>>;
  /** Also tell the live views (kind + small payload: ids, not documents). Defaults to the audit action. */
  readonly event?: { readonly kind: string; readonly data: Readonly<Record<string, unknown>> } | false;
}

export type Record_ = (change: Change) => Promise<void>;

export function actorOfRequest(request: FastifyRequest): Actor {
  if (!request.principal) throw new ApiError(500, 'INTERNAL', 'change without an authenticated caller');
  return { actor: actorOf(request.principal), ip: request.ip };
}

/**
 * Runs `fn` in a transaction; `record` adds audit entries and events to the same transaction.
 *
 * @example await commitChange(deps, actorOfRequest(req), async (trx, record) => { await insertRule(trx, row); await record({ action: 'rule.create', target: row.id }); });
 */
export async function commitChange<T>(
  deps:
    | Pick<ServerDeps, 'store' | 'now' | 'feed'>
    | { store: { db: Kysely<Database> }; now: () => Date; feed?: { notify(): void } },
  who: Actor,
  fn: (trx: Transaction<Database>, record: Record_) => Promise<T>,
): Promise<T> {
  let events = 0;
  const result = await deps.store.db.transaction().execute(async (trx) => {
    const record: Record_ = async (change) => {
      const at = deps.now().toISOString();
      const details = change.details ?? {};
      await appendAudit(trx, {
        at,
        actor: who.actor,
        action: change.action,
        target: change.target,
        details,
        ip: who.ip,
      });
      if (change.event !== false) {
        const event = change.event ?? { kind: change.action, data: { target: change.target, actor: who.actor } };
        await appendEvent(trx, at, event.kind, event.data);
        events += 1;
      }
    };
    return fn(trx, record);
  });
  if (events > 0) deps.feed?.notify();
  return result;
}
