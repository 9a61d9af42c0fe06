/**
 * GET /api/v1/events: server-sent events for the console's live views. Each event is a row of the
 * store's outbox (id, kind, small payload of ids), so a reconnecting client resumes exactly where
 * it stopped with `Last-Event-ID` (or `?after=`) and nothing is lost across a server restart.
 * Without either it starts with what happens next. A comment line every HEARTBEAT_MS keeps
 * proxies from closing an idle stream; the server ends every stream when it shuts down.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { eventsAfter, latestEventId } from '../../store/server/audit-repo.ts';
import type { ServerDeps } from '../context.ts';
import { errors } from './schemas.ts';

export const HEARTBEAT_MS = 15_000;
/** Events read per wake-up; a client far behind catches up in batches. */
const BATCH = 500;

export const eventRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  const open = new Set<() => void>();
  // preClose: before the HTTP server waits for open connections, which an event stream never ends by itself.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  app.get(
    '/api/v1/events',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['events'],
        summary:
          'Live changes as server-sent events (text/event-stream): `id`, `data` = JSON with `kind` ("rule.create", "action.progress", …), `at` and ids',
        querystring: Type.Object(
          { after: Type.Optional(Type.Integer({ minimum: 0, description: 'resume after this event id' })) },
          { additionalProperties: false },
        ),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
        response: errors({ 200: Type.String({ description: 'text/event-stream' }) }),
      },
    },
    async (request, reply) => {
      const fromHeader = request.headers['last-event-id'];
      let cursor =
        fromHeader !== undefined ? Number(fromHeader) : (request.query.after ?? (await latestEventId(deps.store.db)));
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.write(`retry: 2000\n: connected\n\n`);
      let pumping = false;
      let again = false;
      let ended = false;
      const pump = async (): Promise<void> => {
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        try {
          do {
            again = false;
            const batch = await eventsAfter(deps.store.db, cursor, BATCH);
            for (const e of batch) {
              if (ended) return;
              // Unnamed events (EventSource.onmessage gets them all); the kind travels in the data.
              // kind and at come last: a payload field of the same name must not hide what the event is.
              res.write(`id: ${e.id}\ndata: ${JSON.stringify({ ...e.data, kind: e.kind, at: e.at })}\n\n`);
              cursor = e.id;
            }
            if (batch.length === BATCH) again = true;
          } while (again && !ended);
        } catch (error) {
          request.log.warn({ err: error }, 'event stream: reading the outbox failed; the client will reconnect');
          end();
        } finally {
          pumping = false;
        }
      };
      const unsubscribe = deps.feed.subscribe(() => void pump());
      const heartbeat = setInterval(() => res.write(`: keep-alive\n\n`), HEARTBEAT_MS);
      heartbeat.unref();
      function end(): void {
        if (ended) return;
        ended = true;
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(end);
        res.end();
      }
      open.add(end);
      res.on('close', end);
      await pump();
    },
  );
};
