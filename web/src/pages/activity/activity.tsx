/** Activity: actions and their per-host progress (refreshed live by server events), and the audit log. */
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { api } from '../../api/client.ts';
import type { Action, AuditEntry } from '../../api/types.ts';
import { formatDateTime } from '../../components/format.ts';

export function Activity() {
  const [params] = useSearchParams();
  const focus = params.get('action');
  const actions = useQuery({ queryKey: ['actions'], queryFn: ({ signal }) => api<{ actions: Action[] }>('/actions?limit=50', { signal }) });
  const audit = useQuery({ queryKey: ['audit'], queryFn: ({ signal }) => api<{ entries: AuditEntry[] }>('/audit?limit=100', { signal }) });
  return (
    <>
      <h1>Activity</h1>
      <section>
        <h2>Actions</h2>
        {(actions.data?.actions ?? []).length === 0 && <p>No actions yet.</p>}
        {(actions.data?.actions ?? []).map((a) => (
          <article key={a.id} className={a.id === focus ? 'action focus' : 'action'} data-action-id={a.id} aria-label={`Action ${a.action} ${a.id}`}>
            <h3>
              {a.action} <small>{formatDateTime(a.createdAt)}</small> <span data-status={a.status}>{a.status}</span>
              {a.createdBy ? <small> by {a.createdBy}</small> : null}
            </h3>
            <table className="compact">
              <tbody>
                {a.hosts.map((h) => (
                  <tr key={h.name} data-host={h.name}>
                    <th scope="row">{h.name}</th>
                    <td data-status={h.status}>{h.status}</td>
                    <td>
                      {h.percent !== null && h.percent !== undefined ? <progress max={100} value={h.percent} aria-label={`${h.name} progress`} /> : null}
                    </td>
                    <td>{h.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </article>
        ))}
      </section>
      <section>
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
                <td>{e.from ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
