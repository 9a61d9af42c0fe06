/** Hosts: one grid of the fleet (ring, online, last scan, counts per state, reboot pending), paged on the server. */
import { useQuery, keepPreviousData } from '@tanstack/react-query';
import { Link } from 'react-router';
import type { ColumnDef } from '@tanstack/react-table';
import { api, query } from '../../api/client.ts';
import type { HostRow } from '../../api/types.ts';
import { DataGrid } from '../../components/data-grid.tsx';
import { useGridState } from '../../components/grid-state.ts';
import { formatAge } from '../../components/format.ts';

const FILTERS = ['q', 'ring', 'online', 'rebootPending'] as const;

const columns: ColumnDef<HostRow, unknown>[] = [
  {
    id: 'name',
    header: 'Host',
    accessorKey: 'name',
    cell: ({ row }) => <Link to={`/hosts/${encodeURIComponent(row.original.name)}`}>{row.original.name}</Link>,
  },
  { id: 'ring', header: 'Ring', accessorKey: 'ring', cell: ({ row }) => row.original.ring ?? '—' },
  {
    id: 'online',
    header: 'Online',
    enableSorting: false,
    cell: ({ row }) => (row.original.online ? 'online' : 'offline'),
  },
  {
    id: 'lastScanAt',
    header: 'Last scan',
    accessorKey: 'lastScanAt',
    cell: ({ row }) => formatAge(row.original.lastScanAt),
  },
  { id: 'OK', header: 'OK', cell: ({ row }) => <span data-count="OK">{row.original.counts.OK ?? 0}</span> },
  {
    id: 'MISSING',
    header: 'Missing',
    cell: ({ row }) => <span data-count="MISSING">{row.original.counts.MISSING ?? 0}</span>,
  },
  {
    id: 'PENDING',
    header: 'Pending',
    cell: ({ row }) => <span data-count="PENDING">{row.original.counts.PENDING ?? 0}</span>,
  },
  {
    id: 'DISCARDED',
    header: 'Discarded',
    cell: ({ row }) => <span data-count="DISCARDED">{row.original.counts.DISCARDED ?? 0}</span>,
  },
  {
    id: 'failed',
    header: 'Failed',
    cell: ({ row }) => <span data-count="failed">{row.original.wsusCounts.failed ?? 0}</span>,
  },
  {
    id: 'rebootPending',
    header: 'Reboot pending',
    enableSorting: false,
    cell: ({ row }) => (row.original.rebootPending ? 'yes' : 'no'),
  },
];

export function Hosts() {
  const grid = useGridState({ id: 'name', desc: false });
  const q = grid.apiQuery(FILTERS);
  const { data, isFetching, isPlaceholderData, error } = useQuery({
    queryKey: ['hosts', q],
    queryFn: ({ signal }) => api<{ hosts: HostRow[]; total: number }>(`/hosts${query(q)}`, { signal }),
    placeholderData: keepPreviousData,
  });
  return (
    <>
      <h1>Hosts</h1>
      <div className="toolbar" role="search">
        <label>
          Search
          <input
            type="search"
            defaultValue={grid.params.get('q') ?? ''}
            onChange={(e) => grid.setFilter('q', e.target.value)}
            placeholder="host name"
          />
        </label>
        <label>
          Online
          <select value={grid.params.get('online') ?? ''} onChange={(e) => grid.setFilter('online', e.target.value)}>
            <option value="">any</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
        <label>
          Reboot pending
          <select
            value={grid.params.get('rebootPending') ?? ''}
            onChange={(e) => grid.setFilter('rebootPending', e.target.value)}
          >
            <option value="">any</option>
            <option value="true">yes</option>
            <option value="false">no</option>
          </select>
        </label>
      </div>
      {error && <p role="alert">{error.message}</p>}
      <DataGrid
        label="Hosts"
        columns={columns}
        rows={data?.hosts ?? []}
        total={data?.total ?? 0}
        page={grid.page}
        onPage={grid.setPage}
        sorting={grid.sorting}
        onSorting={grid.setSorting}
        rowId={(h) => h.name}
        loading={isFetching}
        stale={isPlaceholderData}
      />
    </>
  );
}
