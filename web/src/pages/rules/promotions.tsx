/** Promotion of updates from ring to ring: status with the evidence that decided it, and promote / halt by hand. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../../api/client.ts';
import { useCan } from '../../api/session.tsx';
import { formatDateTime } from '../../components/format.ts';

interface Promotion {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly ring: string;
  readonly fromRing: string;
  readonly status: string;
  readonly reason: string;
  readonly evidence: {
    readonly installed: number;
    readonly failed: number;
    readonly successPercent: number | null;
    readonly failurePercent: number | null;
    readonly since: string | null;
  };
}

export function PromotionsSection() {
  const canAdmin = useCan('admin');
  const queryClient = useQueryClient();
  const promotions = useQuery({
    queryKey: ['promotions'],
    queryFn: ({ signal }) => api<{ promotions: Promotion[] }>('/promotions', { signal }),
  });
  const act = useMutation({
    mutationFn: (body: { updateId: string; ring: string; action: 'promote' | 'halt' }) =>
      api('/promotions', { method: 'POST', body }),
    onSuccess: () => void queryClient.invalidateQueries(),
  });
  const rows = promotions.data?.promotions ?? [];
  return (
    <section>
      <h2>Promotion</h2>
      {rows.length === 0 ? (
        <p>No update is waiting for promotion.</p>
      ) : (
        <table className="compact" aria-label="Promotions">
          <thead>
            <tr>
              <th scope="col">Update</th>
              <th scope="col">To ring</th>
              <th scope="col">Status</th>
              <th scope="col">Evidence</th>
              {canAdmin && <th scope="col">By hand</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((p) => (
              <tr key={`${p.updateId}/${p.ring}`} data-promotion={`${p.kb ?? p.updateId}/${p.ring}`}>
                <td>{p.kb ? `KB${p.kb}` : p.title}</td>
                <td>
                  {p.fromRing} → {p.ring}
                </td>
                <td data-status={p.status}>{p.status}</td>
                <td>
                  {p.evidence.installed} installed, {p.evidence.failed} failed in {p.fromRing}
                  {p.evidence.successPercent !== null ? ` (${p.evidence.successPercent.toFixed(0)} % success)` : ''}
                  {p.evidence.since ? `, since ${formatDateTime(p.evidence.since)}` : ''} — {p.reason}
                </td>
                {canAdmin && (
                  <td>
                    <button
                      type="button"
                      onClick={() => act.mutate({ updateId: p.updateId, ring: p.ring, action: 'promote' })}
                    >
                      Promote
                    </button>
                    <button
                      type="button"
                      onClick={() => act.mutate({ updateId: p.updateId, ring: p.ring, action: 'halt' })}
                    >
                      Halt
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
