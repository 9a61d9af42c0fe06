/**
 * Grid paging, sorting and filters kept in the page's URL (so a filtered view can be bookmarked or
 * shared, and Back works), turned into the API's query parameters.
 */
import { useCallback, useMemo } from 'react';
import { useSearchParams } from 'react-router';
import type { SortingState } from '@tanstack/react-table';
import type { GridPage } from './data-grid.tsx';

export const PAGE_SIZE = 50;

export function useGridState(defaultSort: { id: string; desc: boolean }) {
  const [params, setParams] = useSearchParams();
  const page: GridPage = {
    offset: Number(params.get('offset') ?? 0) || 0,
    limit: Number(params.get('limit') ?? PAGE_SIZE) || PAGE_SIZE,
  };
  const sortId = params.get('sort') ?? defaultSort.id;
  const desc = (params.get('order') ?? (defaultSort.desc ? 'desc' : 'asc')) === 'desc';
  const sorting: SortingState = useMemo(() => [{ id: sortId, desc }], [sortId, desc]);

  const update = useCallback(
    (changes: Record<string, string | null>, resetOffset = true) => {
      setParams(
        (prev) => {
          const next = new URLSearchParams(prev);
          for (const [k, v] of Object.entries(changes)) {
            if (v === null || v === '') next.delete(k);
            else next.set(k, v);
          }
          if (resetOffset && !('offset' in changes)) next.delete('offset');
          return next;
        },
        { replace: true },
      );
    },
    [setParams],
  );
  return {
    params,
    page,
    sorting,
    setPage: (p: GridPage) => update({ offset: String(p.offset) }, false),
    setSorting: (s: SortingState) =>
      update({ sort: s[0]?.id ?? null, order: s[0] ? (s[0].desc ? 'desc' : 'asc') : null }),
    setFilter: (key: string, value: string | null) => update({ [key]: value }),
    /** The API query for the current view: filters as given, plus offset/limit/sort/order. */
    apiQuery: (filterKeys: readonly string[]) => {
      const q: Record<string, string | number> = {
        offset: page.offset,
        limit: page.limit,
        sort: sortId,
        order: desc ? 'desc' : 'asc',
      };
      for (const k of filterKeys) {
        const v = params.get(k);
        if (v) q[k] = v;
      }
      return q;
    },
  };
}
