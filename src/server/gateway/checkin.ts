/**
 * POST /api/v1/agent/checkin: the long-poll an agent keeps open. Held until an action is created
 * for the host (the hub wakes it with that action), the wait runs out, or the agent hangs up; then
 * answered with the pending actions, the host's policy (left out when the agent names the one it
 * holds) and what the agent needs to know of its reports and the catalog.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { CheckinRequest, CheckinResponse, ErrorBody, namedPolicy } from '../../domain/agent-protocol.ts';
import type { GatewayDeps } from './gateway.ts';
import { AGENT_TRAFFIC, MAX_CHECKIN_WAIT_SECONDS, SMALL_BODY_BYTES } from './route-options.ts';
import type { GatewayStore } from './store.ts';
import type { LongPollHub } from './waiters.ts';

type Actions = Awaited<ReturnType<GatewayStore['pendingActions']>>;

export interface CheckinRoute {
  readonly deps: GatewayDeps;
  readonly hub: LongPollHub<Actions>;
  readonly errors: Record<number, typeof ErrorBody>;
}

export function registerCheckin(instance: FastifyInstance, { deps, hub, errors }: CheckinRoute): void {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/api/v1/agent/checkin',
    {
      ...AGENT_TRAFFIC,
      bodyLimit: SMALL_BODY_BYTES,
      schema: {
        tags: ['agent'],
        summary: 'Check in; held open until an action waits',
        body: CheckinRequest,
        response: { 200: CheckinResponse, ...errors },
      },
    },
    async (request, reply) => {
      const host = request.agentHost!;
      await deps.store.touch(host.id, deps.now(), request.body.bootId ?? null);
      let actions: Actions;
      let woken = false;
      if (request.body.waitSeconds > 0) {
        // The wait is registered before the pending actions are read: an action created while they
        // are read then wakes it, instead of finding no waiter and being missed until the wait runs out.
        const waitS = Math.min(request.body.waitSeconds, MAX_CHECKIN_WAIT_SECONDS);
        const hangUp = new AbortController();
        const onClose = (): void => hangUp.abort();
        request.raw.socket.once('close', onClose);
        try {
          const held = hub.wait(host.id, waitS * 1_000, hangUp.signal);
          actions = await deps.store.pendingActions(host.id).catch((error: unknown) => {
            hangUp.abort();
            throw error;
          });
          const waited = actions.length === 0;
          let answered = false;
          if (!waited) hangUp.abort();
          // Decided now, while the check-in is held, so that an action waking it finds the policy
          // ready (reportMayLag) instead of deciding thousands of woken hosts before answering. A
          // policy that is not the one the agent holds (its last report changed what it may
          // install) goes out at once: the next action's burst of answers should carry actions,
          // not every host's new policy.
          else
            deps.policyFor(host).then(
              (decided) => {
                const holds = request.body.policyDigest;
                if (!answered && holds !== undefined && namedPolicy(decided).digest !== holds) hub.wake([host.id]);
              },
              (error: unknown) =>
                request.log.warn({ err: error, host: host.name }, 'policy for a held check-in not decided ahead'),
            );
          const wake = await held;
          answered = true;
          woken = wake.reason === 'woken';
          // The host was seen for the whole wait: its last-seen time is the end of it. A woken
          // check-in's answer does not wait for that write: it would queue behind the progress
          // of every agent answered before it (one write queue), and the action is what counts.
          const touched = waited ? deps.store.touch(host.id, deps.now(), request.body.bootId ?? null) : null;
          if (woken)
            touched?.catch((error: unknown) =>
              request.log.error({ err: error, host: host.name }, 'last-seen time of a woken check-in not written'),
            );
          // Woken by an action: that action (created after the pending ones were read above, so
          // the only one) is the answer. Woken without one (the host was revoked, or its policy
          // changed): read again.
          const [fresh] = await Promise.all([
            woken ? (wake.payload ?? deps.store.pendingActions(host.id)) : null,
            woken ? null : touched,
          ]);
          if (fresh) actions = fresh;
        } finally {
          request.raw.socket.off('close', onClose);
        }
      } else {
        actions = await deps.store.pendingActions(host.id);
      }
      // Together: the store batches the reads of the check-ins an action woke at the same moment.
      const [catalog, policy, ackedReportSeq] = await Promise.all([
        deps.catalog(),
        deps.policyFor(host, { reportMayLag: woken }),
        deps.store.ackedReportSeq(host.id),
      ]);
      // An agent that holds this policy already is not sent it again: at 10,000 agents an action's
      // answers would otherwise repeat some 40 MB of unchanged policy (100 update ids each). The
      // answer is written as text around the policy's JSON, made once when it was decided.
      const { json, digest } = namedPolicy(policy);
      const answer: CheckinResponse = {
        serverTime: deps.now().toISOString(),
        actions: [...actions],
        policyDigest: digest,
        catalogSha256: catalog?.sha256 ?? null,
        ackedReportSeq,
      };
      const head = JSON.stringify(answer);
      const body = request.body.policyDigest === digest ? head : `${head.slice(0, -1)},"policy":${json}}`;
      // A string with a JSON content type goes out as it is (Fastify serialises only objects); its
      // shape is CheckinResponse's, which the tests parse and compare.
      return reply.type('application/json; charset=utf-8').send(body as unknown as CheckinResponse);
    },
  );
}
