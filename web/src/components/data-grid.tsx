/**
 * A grid whose paging, sorting and filtering happen on the server (TanStack Table in manual
 * mode): the page holds one page of rows whatever the fleet's size, so 10,000 hosts stay quick.
 * Rows are selectable with a checkbox when `selection` is given; the header buttons sort.
 */
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type SortingState } from '@tanstack/react-table';

export interface GridPage {
  readonly offset: number;
  readonly limit: number;
}

export interface DataGridProps<Row> {
  readonly label: string;
  readonly columns: ColumnDef<Row, unknown>[];
  readonly rows: readonly Row[];
  readonly total: number;
  readonly page: GridPage;
  readonly onPage: (page: GridPage) => void;
  readonly sorting: SortingState;
  readonly onSorting: (sorting: SortingState) => void;
  readonly rowId: (row: Row) => string;
  readonly selection?: ReadonlySet<string>;
  readonly onSelection?: (selection: Set<string>) => void;
  /** A request is under way (a page, a filter, or a live refresh of the same view). */
  readonly loading?: boolean;
  /**
   * The rows are the previous view's, kept on screen while the requested page or filter loads
   * (TanStack Query's placeholder data): they are dimmed and inert, and the pager says it is
   * loading, so nobody reads or selects last page's rows as this page's.
   */
  readonly stale?: boolean;
}

/** "10001–10003 of 10003": the rows of `page` in a view of `total` rows. */
export function rangeText(page: GridPage, total: number): string {
  if (total === 0) return 'no rows';
  if (page.offset >= total) return `no rows past ${total}`;
  return `${page.offset + 1}–${Math.min(total, page.offset + page.limit)} of ${total}`;
}

export function DataGrid<Row>(props: DataGridProps<Row>) {
  const { rows, total, page, sorting, selection, onSelection } = props;
  const stale = props.stale === true;
  const table = useReactTable<Row>({
    data: rows as Row[],
    columns: props.columns,
    getCoreRowModel: getCoreRowModel(),
    manualPagination: true,
    manualSorting: true,
    rowCount: total,
    state: { sorting },
    onSortingChange: (updater) => props.onSorting(typeof updater === 'function' ? updater(sorting) : updater),
    getRowId: (row) => props.rowId(row),
  });
  const allSelected = selection !== undefined && rows.length > 0 && rows.every((r) => selection.has(props.rowId(r)));
  const last = Math.max(0, Math.ceil(total / page.limit) - 1);
  const current = Math.floor(page.offset / page.limit);
  return (
    <div className="grid-wrap">
      <table className="grid" aria-label={props.label} aria-busy={props.loading || stale ? 'true' : 'false'}>
        <thead>
          {table.getHeaderGroups().map((group) => (
            <tr key={group.id}>
              {selection && onSelection && (
                <th className="select">
                  <input
                    type="checkbox"
                    aria-label="Select all rows on this page"
                    checked={allSelected}
                    disabled={stale}
                    onChange={() => {
                      const next = new Set(selection);
                      for (const r of rows) {
                        if (allSelected) next.delete(props.rowId(r));
                        else next.add(props.rowId(r));
                      }
                      onSelection(next);
                    }}
                  />
                </th>
              )}
              {group.headers.map((header) => {
                const sorted = header.column.getIsSorted();
                const sortable = header.column.getCanSort() && header.column.columnDef.enableSorting !== false;
                const content = flexRender(header.column.columnDef.header, header.getContext());
                return (
                  <th
                    key={header.id}
                    aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'}
                  >
                    {sortable ? (
                      <button type="button" className="sort" onClick={header.column.getToggleSortingHandler()}>
                        {content}
                        <span aria-hidden="true">{sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}</span>
                      </button>
                    ) : (
                      content
                    )}
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody className={stale ? 'stale' : undefined} inert={stale}>
          {table.getRowModel().rows.map((row) => (
            <tr key={row.id} data-row-id={row.id}>
              {selection && onSelection && (
                <td className="select">
                  <input
                    type="checkbox"
                    aria-label={`Select ${row.id}`}
                    checked={selection.has(row.id)}
                    onChange={() => {
                      const next = new Set(selection);
                      if (next.has(row.id)) next.delete(row.id);
                      else next.add(row.id);
                      onSelection(next);
                    }}
                  />
                </td>
              )}
              {row.getVisibleCells().map((cell) => (
                <td key={cell.id}>{flexRender(cell.column.columnDef.cell, cell.getContext())}</td>
              ))}
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={props.columns.length + (selection ? 1 : 0)} className="empty">
                {props.loading || stale ? 'Loading…' : 'Nothing matches.'}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <nav className="pager" aria-label={`${props.label} pages`}>
        <button type="button" disabled={current === 0} onClick={() => props.onPage({ ...page, offset: 0 })}>
          First
        </button>
        <button
          type="button"
          disabled={current === 0}
          onClick={() => props.onPage({ ...page, offset: Math.min(last, current - 1) * page.limit })}
        >
          Previous
        </button>
        <span role="status">{stale ? `Loading ${rangeText(page, total)}…` : rangeText(page, total)}</span>
        <button
          type="button"
          disabled={current >= last}
          onClick={() => props.onPage({ ...page, offset: page.offset + page.limit })}
        >
          Next
        </button>
        <button
          type="button"
          disabled={current >= last}
          onClick={() => props.onPage({ ...page, offset: last * page.limit })}
        >
          Last
        </button>
      </nav>
    </div>
  );
}
