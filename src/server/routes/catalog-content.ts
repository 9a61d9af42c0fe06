/**
 * The catalog (which wsusscn2.cab is current; sync now) and the content cache (what is held, how
 * much; clean up now). A sync can take minutes: POST answers 202 at once and the outcome arrives
 * as a `catalog.synced` or `catalog.sync-failed` event (and in the audit log). One sync at a time.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { appendAudit, appendEvent } from '../../store/server/audit-repo.ts';
import { actorOfRequest, commitChange } from '../changes.ts';
import type { ServerDeps } from '../context.ts';
import { ApiError } from '../errors.ts';
import { errors, IsoTime, Nullable } from './schemas.ts';

const Version = Type.Object({
  id: Type.Integer(),
  state: Type.String(),
  packageId: Nullable(Type.String()),
  creationDate: Nullable(Type.String()),
  source: Type.String(),
  signerSubject: Nullable(Type.String()),
  startedAt: IsoTime,
  importedAt: Nullable(IsoTime),
  updates: Type.Integer(),
  files: Type.Integer(),
  shards: Type.Integer(),
});

/** Which catalog versions exist (read from the store; the catalog module itself is wired in by the CLI). */
async function catalogStatus(db: ServerDeps['store']['db']) {
  const rows = await db.selectFrom('catalog_versions').selectAll().orderBy('id', 'desc').execute();
  const pick = (state: string) => {
    const r = rows.find((x) => x.state === state);
    return r
      ? {
          id: Number(r.id),
          state: r.state,
          packageId: r.package_id,
          creationDate: r.creation_date,
          source: r.source,
          signerSubject: r.signer_subject,
          startedAt: r.started_at,
          importedAt: r.imported_at,
          updates: r.updates_count,
          files: r.files_count,
          shards: r.shards_count,
        }
      : null;
  };
  return { current: pick('current'), previous: pick('previous'), importing: pick('importing') };
}

export const catalogContentRoutes: FastifyPluginAsyncTypebox<{ deps: ServerDeps }> = async (app, { deps }) => {
  let syncing: Promise<void> | undefined;

  app.get(
    '/api/v1/catalog',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['catalog'],
        summary: 'The current catalog (and the previous one, and an import in progress)',
        response: errors({
          200: Type.Object({
            current: Nullable(Version),
            previous: Nullable(Version),
            importing: Nullable(Version),
            syncing: Type.Boolean(),
          }),
        }),
      },
    },
    async () => ({
      ...(await catalogStatus(deps.store.db)),
      syncing: syncing !== undefined,
    }),
  );

  app.post(
    '/api/v1/catalog/sync',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['catalog'],
        summary: 'Sync the catalog now (downloads only if it changed); the outcome comes as an event',
        response: errors({ 202: Type.Object({ started: Type.Boolean(), message: Type.String() }) }),
      },
    },
    async (request, reply) => {
      const service = deps.catalog;
      if (!service)
        throw new ApiError(503, 'CATALOG_SYNC_UNAVAILABLE', 'This server has no catalog source configured.');
      const who = actorOfRequest(request);
      if (syncing)
        return reply
          .status(202)
          .send({ started: false, message: 'A sync is already running; its outcome comes as an event.' });
      await commitChange(deps, who, async (_trx, record) =>
        record({ action: 'catalog.sync', target: null, event: { kind: 'catalog.sync-started', data: {} } }),
      );
      syncing = (async () => {
        const at = () => deps.now().toISOString();
        try {
          const result = await service.sync();
          await appendEvent(deps.store.db, at(), 'catalog.synced', {
            changed: result.changed,
            version: result.versionId,
            message: result.message,
          });
        } catch (error) {
          request.log.error({ err: error }, 'catalog sync failed');
          const code = (error as { code?: string }).code ?? 'INTERNAL';
          await appendAudit(deps.store.db, {
            at: at(),
            actor: who.actor,
            action: 'catalog.sync-failed',
            target: null,
            details: { code, message: (error as Error).message },
            ip: who.ip,
          });
          await appendEvent(deps.store.db, at(), 'catalog.sync-failed', { code, message: (error as Error).message });
        } finally {
          syncing = undefined;
          deps.feed.notify();
        }
      })();
      return reply
        .status(202)
        .send({ started: true, message: 'Sync started; watch /api/v1/events for catalog.synced.' });
    },
  );
  app.addHook('preClose', async () => {
    await syncing;
  });

  const ContentFile = Type.Object({
    key: Type.String(),
    sha1: Nullable(Type.String()),
    sha256: Nullable(Type.String()),
    size: Type.Integer(),
    fileName: Nullable(Type.String()),
    cachedAt: IsoTime,
    lastNeededAt: IsoTime,
  });
  app.get(
    '/api/v1/content',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['content'],
        summary: 'The content cache: totals and the files held',
        response: errors({
          200: Type.Object({
            files: Type.Integer(),
            bytes: Type.Integer(),
            downloading: Type.Integer(),
            upstreamBytes: Type.Integer(),
            servedBytes: Type.Integer(),
            items: Type.Array(ContentFile),
          }),
        }),
      },
    },
    async () => {
      if (!deps.content) return { files: 0, bytes: 0, downloading: 0, upstreamBytes: 0, servedBytes: 0, items: [] };
      return { ...deps.content.stats(), items: [...deps.content.list()] };
    },
  );
  app.post(
    '/api/v1/content/cleanup',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['content'],
        summary: 'Delete cached files no host needs whose grace period passed; says what was freed',
        response: errors({
          200: Type.Object({
            deleted: Type.Array(Type.Object({ key: Type.String(), size: Type.Integer() })),
            bytesFreed: Type.Integer(),
            kept: Type.Integer(),
            inGrace: Type.Integer(),
          }),
        }),
      },
    },
    async (request) => {
      if (!deps.content) throw new ApiError(503, 'CONTENT_UNAVAILABLE', 'This server has no content cache configured.');
      const report = await deps.content.cleanup();
      await commitChange(deps, actorOfRequest(request), async (_trx, record) =>
        record({
          action: 'content.cleanup',
          target: null,
          details: { files: report.deleted.length, bytesFreed: report.bytesFreed },
          event: { kind: 'content.cleaned', data: { files: report.deleted.length, bytesFreed: report.bytesFreed } },
        }),
      );
      return { ...report, deleted: [...report.deleted] };
    },
  );
};
