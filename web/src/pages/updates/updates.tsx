/**
 * Updates, in WAPT's layout: filters on the left (severity, product, classification, state,
 * decision, released since), a grid of updates with host counts and the decision (and the rule
 * that made it); select rows to allow, forbid (after a preview) or download now.
 */
import { useState } from 'react';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { ColumnDef } from '@tanstack/react-table';
import { api, query } from '../../api/client.ts';
import { useCan } from '../../api/session.tsx';
import type { UpdateRow } from '../../api/types.ts';
import { DataGrid } from '../../components/data-grid.tsx';
import { toolbarKeys } from '../../components/keyboard.ts';
import { useGridState } from '../../components/grid-state.ts';
import { formatDate } from '../../components/format.ts';
import { RulePreviewDialog, type RulePreview } from '../../components/rule-preview.tsx';

const FILTERS = ['q', 'severity', 'classification', 'product', 'state', 'decision', 'since'] as const;

interface Facets {
  readonly severities: readonly string[];
  readonly classifications: readonly string[];
  readonly products: readonly string[];
}

const columns: ColumnDef<UpdateRow, unknown>[] = [
  {
    id: 'kb',
    header: 'KB',
    accessorKey: 'kb',
    cell: ({ row }) => (
      <Link to={`/updates/${row.original.updateId}`}>{row.original.kb ? `KB${row.original.kb}` : '(no KB)'}</Link>
    ),
  },
  {
    id: 'title',
    header: 'Title',
    accessorKey: 'title',
    cell: ({ row }) => <span className="title">{row.original.title}</span>,
  },
  {
    id: 'classification',
    header: 'Classification',
    enableSorting: false,
    cell: ({ row }) => row.original.classification ?? '—',
  },
  { id: 'severity', header: 'Severity', accessorKey: 'severity', cell: ({ row }) => row.original.severity ?? '—' },
  {
    id: 'releasedAt',
    header: 'Released',
    accessorKey: 'releasedAt',
    cell: ({ row }) => formatDate(row.original.releasedAt),
  },
  {
    id: 'decision',
    header: 'Decision (hosts)',
    enableSorting: false,
    cell: ({ row }) => <Decisions d={row.original.decisions} />,
  },
  {
    id: 'MISSING',
    header: 'Needed',
    cell: ({ row }) => (
      <span data-count="needed">{(row.original.wsusCounts.needed ?? 0) + (row.original.wsusCounts.failed ?? 0)}</span>
    ),
  },
  {
    id: 'OK',
    header: 'Installed',
    cell: ({ row }) => <span data-count="installed">{row.original.wsusCounts.installed ?? 0}</span>,
  },
  {
    id: 'failed',
    header: 'Failed',
    cell: ({ row }) => <span data-count="failed">{row.original.wsusCounts.failed ?? 0}</span>,
  },
  {
    id: 'DISCARDED',
    header: 'Discarded',
    cell: ({ row }) => <span data-count="DISCARDED">{row.original.counts.DISCARDED ?? 0}</span>,
  },
  { id: 'cache', header: 'On the server', enableSorting: false, cell: ({ row }) => row.original.cache },
];

/** "allowed 3 · forbidden 1" — the policy's decision for the hosts that need the update. */
function Decisions({ d }: { d: UpdateRow['decisions'] }) {
  const parts = (['allowed', 'forbidden', 'deferred'] as const).filter((k) => d[k] > 0);
  if (parts.length === 0) return <span>—</span>;
  return (
    <span data-decision={parts.length === 1 ? parts[0] : 'mixed'}>{parts.map((k) => `${k} ${d[k]}`).join(' · ')}</span>
  );
}

function Filter(props: {
  label: string;
  name: string;
  values: readonly string[];
  value: string;
  onChange: (v: string) => void;
}) {
  return (
    <label>
      {props.label}
      <select name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        <option value="">any</option>
        {props.values.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Updates() {
  const grid = useGridState({ id: 'releasedAt', desc: true });
  const canAdmin = useCan('admin');
  const canOperate = useCan('operator');
  const queryClient = useQueryClient();
  const [selection, setSelection] = useState<Set<string>>(new Set());
  const [pending, setPending] = useState<{ action: 'allow' | 'forbid'; preview: RulePreview } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const q = grid.apiQuery(FILTERS);
  const { data, isFetching, isPlaceholderData, error } = useQuery({
    queryKey: ['updates', q],
    queryFn: ({ signal }) => api<{ updates: UpdateRow[]; total: number }>(`/updates${query(q)}`, { signal }),
    placeholderData: keepPreviousData,
  });
  const facets = useQuery({
    queryKey: ['updates', 'facets'],
    queryFn: ({ signal }) => api<Facets>('/updates/facets', { signal }),
  });

  const rule = (action: 'allow' | 'forbid') => ({ action, updateIds: [...selection] });
  const preview = useMutation({
    mutationFn: (action: 'allow' | 'forbid') =>
      api<RulePreview>('/rules/preview', { method: 'POST', body: { add: [rule(action)] } }),
    onSuccess: (result, action) => setPending({ action, preview: result }),
    onError: (e) => setNotice(e.message),
  });
  const save = useMutation({
    mutationFn: (action: 'allow' | 'forbid') => api<{ id: string }>('/rules', { method: 'POST', body: rule(action) }),
    onSuccess: (_r, action) => {
      setNotice(`Rule saved: ${action} ${selection.size} update(s).`);
      setPending(null);
      setSelection(new Set());
      void queryClient.invalidateQueries();
    },
    onError: (e) => setNotice(e.message),
  });
  // "Download now": a download action on every host that needs one of the selected updates; the
  // server's content cache fetches each file once, the hosts then take it from the server.
  const download = useMutation({
    mutationFn: async () => {
      const ids = [...selection];
      const details = await Promise.all(
        ids.map((id) => api<{ hosts: { name: string; wsusState: string }[] }>(`/updates/${id}`)),
      );
      const hosts = [
        ...new Set(
          details.flatMap((d) =>
            d.hosts.filter((h) => h.wsusState === 'needed' || h.wsusState === 'failed').map((h) => h.name),
          ),
        ),
      ];
      if (hosts.length === 0) return { id: null, hosts: 0 };
      return api<{ id: string; hosts: number }>('/actions', {
        method: 'POST',
        body: { action: 'download', hosts, updateIds: ids },
      });
    },
    onSuccess: (r) => setNotice(r.id ? `Download started on ${r.hosts} host(s).` : 'No host needs these updates.'),
    onError: (e) => setNotice(e.message),
  });

  const value = (k: string) => grid.params.get(k) ?? '';
  return (
    <div className="split">
      <aside className="filters" aria-label="Filters">
        <h2>Filters</h2>
        <label>
          Search
          <input
            type="search"
            name="q"
            defaultValue={value('q')}
            onChange={(e) => grid.setFilter('q', e.target.value)}
            placeholder="KB or title"
          />
        </label>
        <Filter
          label="Severity"
          name="severity"
          values={facets.data?.severities ?? []}
          value={value('severity')}
          onChange={(v) => grid.setFilter('severity', v)}
        />
        <Filter
          label="Classification"
          name="classification"
          values={facets.data?.classifications ?? []}
          value={value('classification')}
          onChange={(v) => grid.setFilter('classification', v)}
        />
        <Filter
          label="Product"
          name="product"
          values={facets.data?.products ?? []}
          value={value('product')}
          onChange={(v) => grid.setFilter('product', v)}
        />
        <Filter
          label="State"
          name="state"
          values={['MISSING', 'PENDING', 'OK', 'DISCARDED']}
          value={value('state')}
          onChange={(v) => grid.setFilter('state', v)}
        />
        <Filter
          label="Decision"
          name="decision"
          values={['allowed', 'forbidden', 'deferred']}
          value={value('decision')}
          onChange={(v) => grid.setFilter('decision', v)}
        />
        <label>
          Released since
          <input
            type="date"
            name="since"
            value={value('since')}
            onChange={(e) => grid.setFilter('since', e.target.value)}
          />
        </label>
      </aside>
      <section className="main-pane">
        <h1>Updates</h1>
        {(canAdmin || canOperate) && (
          <div className="toolbar" role="toolbar" aria-label="Selected updates" onKeyDown={toolbarKeys}>
            <span>{selection.size} selected</span>
            {canAdmin && (
              <>
                <button
                  type="button"
                  disabled={selection.size === 0 || preview.isPending}
                  onClick={() => preview.mutate('allow')}
                >
                  Allow
                </button>
                <button
                  type="button"
                  disabled={selection.size === 0 || preview.isPending}
                  onClick={() => preview.mutate('forbid')}
                >
                  Forbid
                </button>
              </>
            )}
            {canOperate && (
              <button
                type="button"
                disabled={selection.size === 0 || download.isPending}
                onClick={() => download.mutate()}
              >
                Download now
              </button>
            )}
          </div>
        )}
        {notice && (
          <p role="status" className="notice">
            {notice}
          </p>
        )}
        {error && <p role="alert">{error.message}</p>}
        <DataGrid
          label="Updates"
          columns={columns}
          rows={data?.updates ?? []}
          total={data?.total ?? 0}
          page={grid.page}
          onPage={grid.setPage}
          sorting={grid.sorting}
          onSorting={grid.setSorting}
          rowId={(u) => u.updateId}
          {...(canAdmin || canOperate ? { selection, onSelection: setSelection } : {})}
          loading={isFetching}
          stale={isPlaceholderData}
        />
        <RulePreviewDialog
          preview={pending?.preview ?? null}
          busy={save.isPending}
          onConfirm={() => pending && save.mutate(pending.action)}
          onCancel={() => setPending(null)}
        />
      </section>
    </div>
  );
}
