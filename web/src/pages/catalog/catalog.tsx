/** Catalog and content: the current catalog and "sync now"; the content cache's size and "clean up". */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../../api/client.ts';
import { useCan } from '../../api/session.tsx';
import { formatAge, formatBytes, formatDateTime } from '../../components/format.ts';

interface CatalogInfo {
  readonly current: { readonly version: string; readonly importedAt: string; readonly updates: number; readonly sha256?: string | null } | null;
  readonly lastSync?: { readonly at: string; readonly outcome: string; readonly message?: string | null } | null;
}

interface ContentInfo {
  readonly bytes: number;
  readonly files: number;
  readonly downloading?: number;
  readonly reclaimableBytes?: number;
}

export function CatalogPage() {
  const canOperate = useCan('operator');
  const queryClient = useQueryClient();
  const [notice, setNotice] = useState<string | null>(null);
  const catalog = useQuery({ queryKey: ['catalog'], queryFn: ({ signal }) => api<CatalogInfo>('/catalog', { signal }) });
  const content = useQuery({ queryKey: ['content'], queryFn: ({ signal }) => api<ContentInfo>('/content', { signal }) });
  const sync = useMutation({
    mutationFn: () => api<{ outcome?: string; message?: string }>('/catalog/sync', { method: 'POST' }),
    onSuccess: (r) => {
      setNotice(`Catalog sync: ${r.message ?? r.outcome ?? 'started'}`);
      void queryClient.invalidateQueries({ queryKey: ['catalog'] });
    },
    onError: (e) => setNotice(e.message),
  });
  const cleanup = useMutation({
    mutationFn: () => api<{ freedBytes: number; files: number }>('/content/cleanup', { method: 'POST' }),
    onSuccess: (r) => {
      setNotice(`Cleanup freed ${formatBytes(r.freedBytes)} in ${r.files} files.`);
      void queryClient.invalidateQueries({ queryKey: ['content'] });
    },
    onError: (e) => setNotice(e.message),
  });
  const c = catalog.data?.current;
  return (
    <>
      <h1>Catalog and content</h1>
      {notice && <p role="status">{notice}</p>}
      <section>
        <h2>Catalog</h2>
        {c ? (
          <dl className="facts">
            <dt>Version</dt>
            <dd>{c.version}</dd>
            <dt>Imported</dt>
            <dd>
              {formatDateTime(c.importedAt)} ({formatAge(c.importedAt)})
            </dd>
            <dt>Updates</dt>
            <dd>{c.updates}</dd>
          </dl>
        ) : (
          <p>No catalog imported yet.</p>
        )}
        {catalog.data?.lastSync && (
          <p>
            Last sync {formatDateTime(catalog.data.lastSync.at)}: {catalog.data.lastSync.outcome} {catalog.data.lastSync.message}
          </p>
        )}
        {canOperate && (
          <button type="button" onClick={() => sync.mutate()} disabled={sync.isPending}>
            Sync now
          </button>
        )}
      </section>
      <section>
        <h2>Content cache</h2>
        {content.data && (
          <dl className="facts">
            <dt>Size</dt>
            <dd data-testid="content-bytes">{formatBytes(content.data.bytes)}</dd>
            <dt>Files</dt>
            <dd>{content.data.files}</dd>
            {content.data.reclaimableBytes !== undefined && (
              <>
                <dt>No longer needed</dt>
                <dd>{formatBytes(content.data.reclaimableBytes)}</dd>
              </>
            )}
          </dl>
        )}
        {canOperate && (
          <button type="button" onClick={() => cleanup.mutate()} disabled={cleanup.isPending}>
            Clean up now
          </button>
        )}
      </section>
    </>
  );
}
