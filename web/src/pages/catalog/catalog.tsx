/** Catalog and content: the current catalog and "sync now"; the content cache's size and "clean up". */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api } from '../../api/client.ts';
import { useCan } from '../../api/session.tsx';
import { formatAge, formatBytes, formatDateTime } from '../../components/format.ts';

interface Version {
  readonly id: number;
  readonly packageId: string | null;
  readonly importedAt: string | null;
  readonly updates: number;
  readonly source: string;
  readonly signerSubject: string | null;
}

interface CatalogInfo {
  readonly current: Version | null;
  readonly previous: Version | null;
  readonly importing: Version | null;
  readonly syncing: boolean;
}

interface ContentInfo {
  readonly bytes: number;
  readonly files: number;
  readonly downloading: number;
  readonly upstreamBytes: number;
  readonly servedBytes: number;
}

export function CatalogPage() {
  const canOperate = useCan('operator');
  const queryClient = useQueryClient();
  const [notice, setNotice] = useState<string | null>(null);
  const catalog = useQuery({
    queryKey: ['catalog'],
    queryFn: ({ signal }) => api<CatalogInfo>('/catalog', { signal }),
  });
  const content = useQuery({
    queryKey: ['content'],
    queryFn: ({ signal }) => api<ContentInfo>('/content', { signal }),
  });
  const sync = useMutation({
    mutationFn: () => api<{ started: boolean; message: string }>('/catalog/sync', { method: 'POST' }),
    onSuccess: (r) => {
      setNotice(`Catalog sync: ${r.message}`);
      void queryClient.invalidateQueries({ queryKey: ['catalog'] });
    },
    onError: (e) => setNotice(e.message),
  });
  const cleanup = useMutation({
    mutationFn: () =>
      api<{ deleted: unknown[]; bytesFreed: number; kept: number; inGrace: number }>('/content/cleanup', {
        method: 'POST',
      }),
    onSuccess: (r) => {
      setNotice(
        `Cleanup freed ${formatBytes(r.bytesFreed)} in ${r.deleted.length} files; ${r.inGrace} unneeded files wait out their grace period.`,
      );
      void queryClient.invalidateQueries({ queryKey: ['content'] });
    },
    onError: (e) => setNotice(e.message),
  });
  const c = catalog.data?.current;
  return (
    <>
      <h1>Catalog and content</h1>
      {notice && <p role="status">{notice}</p>}
      <section aria-busy={catalog.isPending}>
        <h2>Catalog</h2>
        {c ? (
          <dl className="facts">
            <dt>Version</dt>
            <dd>{c.packageId ?? c.id}</dd>
            <dt>Imported</dt>
            <dd data-testid="catalog-imported">
              {formatDateTime(c.importedAt)} ({formatAge(c.importedAt)})
            </dd>
            <dt>Updates</dt>
            <dd>{c.updates}</dd>
            <dt>Signed by</dt>
            <dd>{c.signerSubject ?? '—'}</dd>
            <dt>Source</dt>
            <dd>{c.source}</dd>
          </dl>
        ) : (
          <p>No catalog imported yet.</p>
        )}
        {catalog.data?.syncing && <p role="status">A sync is running.</p>}
        {canOperate && (
          <button type="button" onClick={() => sync.mutate()} disabled={sync.isPending}>
            Sync now
          </button>
        )}
      </section>
      <section aria-busy={content.isPending}>
        <h2>Content cache</h2>
        {content.data && (
          <dl className="facts">
            <dt>Size</dt>
            <dd data-testid="content-bytes">{formatBytes(content.data.bytes)}</dd>
            <dt>Files</dt>
            <dd>{content.data.files}</dd>
            <dt>Downloading</dt>
            <dd>{content.data.downloading}</dd>
            <dt>Fetched from upstream</dt>
            <dd>{formatBytes(content.data.upstreamBytes)}</dd>
            <dt>Served to hosts</dt>
            <dd>{formatBytes(content.data.servedBytes)}</dd>
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
