/** One host: its updates with states and last results (HRESULT and meaning), its history, and the action buttons. */
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api } from '../../api/client.ts';
import type { HostRow, HostUpdateRow } from '../../api/types.ts';
import { ActionButtons } from '../../components/action-buttons.tsx';
import { formatAge, formatDateTime } from '../../components/format.ts';
import { describeDecidedBy } from '../../components/decision.ts';
import { HostProgress } from './host-progress.tsx';

interface History {
  readonly history: readonly {
    readonly at: string;
    readonly actionId: string;
    readonly action: string;
    readonly state: string;
    readonly phase: string | null;
    readonly hresult: string | null;
    readonly hresultName: string | null;
    readonly message: string | null;
  }[];
  readonly results: readonly {
    readonly updateId: string;
    readonly kb: string | null;
    readonly title: string | null;
    readonly delivery: string;
    readonly hresult: string | null;
    readonly hresultName: string | null;
    readonly hresultMeaning: string | null;
    readonly attempts: number;
    readonly at: string | null;
  }[];
}

export function HostPage() {
  const { name = '' } = useParams();
  const path = `/hosts/${encodeURIComponent(name)}`;
  const host = useQuery({ queryKey: ['host', name, 'info'], queryFn: ({ signal }) => api<HostRow>(path, { signal }) });
  const updates = useQuery({
    queryKey: ['host', name, 'updates'],
    queryFn: ({ signal }) => api<{ updates: HostUpdateRow[] }>(`${path}/updates`, { signal }),
  });
  const history = useQuery({
    queryKey: ['host', name, 'history'],
    queryFn: ({ signal }) => api<History>(`${path}/history`, { signal }),
  });
  if (host.error) return <p role="alert">{host.error.message}</p>;
  const h = host.data;
  return (
    <>
      <h1>{name}</h1>
      {h && (
        <dl className="facts">
          <dt>Ring</dt>
          <dd>{h.ring ?? '—'}</dd>
          <dt>Online</dt>
          <dd data-testid="online">{h.online ? 'online' : `offline (last seen ${formatAge(h.lastSeenAt)})`}</dd>
          <dt>Last scan</dt>
          <dd>{formatAge(h.lastScanAt)}</dd>
          <dt>Reboot pending</dt>
          <dd data-testid="reboot-pending">{h.rebootPending ? 'yes' : 'no'}</dd>
        </dl>
      )}
      <ActionButtons hosts={[name]} />
      <HostProgress host={name} />
      <section aria-busy={updates.isPending}>
        <h2>Updates</h2>
        <table className="compact" aria-label="Host updates">
          <thead>
            <tr>
              <th scope="col">KB</th>
              <th scope="col">Title</th>
              <th scope="col">State</th>
              <th scope="col">Decision</th>
              <th scope="col">Last result</th>
              <th scope="col">Attempts</th>
            </tr>
          </thead>
          <tbody>
            {(updates.data?.updates ?? []).map((u) => (
              <tr key={u.updateId} data-update-id={u.updateId}>
                <td>
                  <Link to={`/updates/${u.updateId}`}>{u.kb ? `KB${u.kb}` : '—'}</Link>
                </td>
                <td className="title">{u.title}</td>
                <td data-state={u.state ?? u.wsusState}>
                  {u.state} <small>({u.wsusState})</small>
                </td>
                <td data-decision={u.decision} title={describeDecidedBy(u.decidedBy)}>
                  {u.decision}
                  {u.deferredUntil ? ` until ${formatDateTime(u.deferredUntil)}` : ''}{' '}
                  <small>{describeDecidedBy(u.decidedBy)}</small>
                </td>
                <td>{u.hresult ? <code>{u.hresult}</code> : '—'}</td>
                <td>{u.attempts}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-busy={history.isPending}>
        <h2>Last results</h2>
        {(history.data?.results ?? []).length === 0 ? (
          <p>No install attempts reported.</p>
        ) : (
          <table className="compact" aria-label="Last results">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Update</th>
                <th scope="col">Result</th>
                <th scope="col">HRESULT</th>
                <th scope="col">Meaning</th>
                <th scope="col">Attempts</th>
              </tr>
            </thead>
            <tbody>
              {(history.data?.results ?? []).map((r) => (
                <tr key={r.updateId}>
                  <td>{formatDateTime(r.at)}</td>
                  <td>{r.kb ? `KB${r.kb}` : r.title}</td>
                  <td>{r.delivery}</td>
                  <td>
                    {r.hresult ? <code>{r.hresult}</code> : '—'} {r.hresultName}
                  </td>
                  <td>{r.hresultMeaning}</td>
                  <td>{r.attempts}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-busy={history.isPending}>
        <h2>History</h2>
        <ol className="history">
          {(history.data?.history ?? []).map((e) => (
            <li key={`${e.actionId}`}>
              {formatDateTime(e.at)} — {e.action}: {e.state} {e.phase ?? ''}{' '}
              {e.hresult ? <code>{e.hresult}</code> : null} {e.hresultName} {e.message}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}
