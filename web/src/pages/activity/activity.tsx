/**
 * Activity: actions newest first, each with its per-host progress (refreshed live: every
 * action.progress event invalidates the action queries), and the audit log of every change.
 */
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { api } from '../../api/client.ts';
import type { ActionDetail, ActionSummary, AuditEntry } from '../../api/types.ts';
import { formatDateTime } from '../../components/format.ts';

/** How many of the newest actions are shown with their hosts' progress. */
const DETAILED_ACTIONS = 10;

function ActionCard({ summary, focus }: { summary: ActionSummary; focus: boolean }) {
  const { data } = useQuery({
    queryKey: ['actions', summary.id],
    queryFn: ({ signal }) => api<ActionDetail>(`/actions/${encodeURIComponent(summary.id)}`, { signal }),
  });
  const a = data ?? summary;
  const target = summary.target.ring ? `ring ${summary.target.ring}` : (summary.target.hosts ?? []).join(', ');
  return (
    <article
      className={focus ? 'action focus' : 'action'}
      data-action-id={a.id}
      aria-label={`Action ${a.action} ${a.id}`}
    >
      <h3>
        {a.action} on {target}{' '}
        <small>
          {formatDateTime(a.createdAt)} by {a.createdBy}
        </small>{' '}
        <span data-status={a.state}>{a.state}</span>
      </h3>
      {data && (
        <table className="compact">
          <tbody>
            {data.hosts.map((h) => (
              <tr key={h.host} data-host={h.host}>
                <th scope="row">{h.host}</th>
                <td data-status={h.state}>{h.state}</td>
                <td>{h.phase ?? ''}</td>
                <td>
                  {h.percent !== null ? (
                    <progress max={100} value={h.percent} aria-label={`${h.host} progress`} />
                  ) : null}
                </td>
                <td>
                  {h.hresult ? <code>{h.hresult}</code> : null} {h.message}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </article>
  );
}

export function Activity() {
  const [params] = useSearchParams();
  const focus = params.get('action');
  const actions = useQuery({
    queryKey: ['actions'],
    queryFn: ({ signal }) => api<{ actions: ActionSummary[] }>('/actions?limit=50', { signal }),
  });
  const audit = useQuery({
    queryKey: ['audit'],
    queryFn: ({ signal }) => api<{ entries: AuditEntry[] }>('/audit?limit=100', { signal }),
  });
  const list = actions.data?.actions ?? [];
  return (
    <>
      <h1>Activity</h1>
      <section aria-busy={actions.isPending}>
        <h2>Actions</h2>
        {list.length === 0 && <p>No actions yet.</p>}
        {list.slice(0, DETAILED_ACTIONS).map((a) => (
          <ActionCard key={a.id} summary={a} focus={a.id === focus} />
        ))}
        {list.length > DETAILED_ACTIONS && (
          <ul>
            {list.slice(DETAILED_ACTIONS).map((a) => (
              <li key={a.id}>
                {formatDateTime(a.createdAt)} {a.action} — {a.state}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-busy={audit.isPending}>
        <h2>Audit log</h2>
        <table className="compact" aria-label="Audit log">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">Target</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {(audit.data?.entries ?? []).map((e, i) => (
              <tr key={i}>
                <td>{formatDateTime(e.at)}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>{e.target ?? ''}</td>
                <td>{e.ip ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
