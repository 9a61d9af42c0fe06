/** One update: its hosts by state, supersedence and prerequisites from the catalog, failures grouped by HRESULT. */
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api } from '../../api/client.ts';
import type { StateCounts } from '../../api/types.ts';
import { formatDate } from '../../components/format.ts';

interface Related {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string | null;
}

/** GET /api/v1/updates/{id} (src/server/routes/views.ts). */
interface UpdateDetail {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string | null;
  readonly classification: string | null;
  readonly severity: string | null;
  readonly releasedAt: string | null;
  readonly products: readonly string[];
  readonly cves: readonly string[];
  readonly moreInfoUrls: readonly string[];
  readonly counts: StateCounts;
  readonly decisions: { readonly allowed: number; readonly forbidden: number; readonly deferred: number };
  readonly hosts: readonly {
    readonly name: string;
    readonly state: string | null;
    readonly wsusState: string;
    readonly decision: string;
    readonly hresult: string | null;
  }[];
  readonly supersedes: readonly Related[];
  readonly supersededBy: readonly Related[];
  readonly prerequisites: readonly Related[];
  readonly failures: readonly {
    readonly hresult: string;
    readonly hresultName: string | null;
    readonly hresultMeaning: string | null;
    readonly hosts: readonly string[];
  }[];
  readonly promotion: readonly {
    readonly ring: string;
    readonly status: string | null;
    readonly reason: string | null;
  }[];
}

function RelatedList({ items, label }: { items: readonly Related[]; label: string }) {
  return (
    <section>
      <h2>{label}</h2>
      {items.length === 0 ? (
        <p>None.</p>
      ) : (
        <ul>
          {items.map((r) => (
            <li key={r.updateId}>
              <Link to={`/updates/${r.updateId}`}>{r.kb ? `KB${r.kb}` : r.updateId}</Link> {r.title}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function UpdatePage() {
  const { id = '' } = useParams();
  const { data, error } = useQuery({
    queryKey: ['update', id],
    queryFn: ({ signal }) => api<UpdateDetail>(`/updates/${encodeURIComponent(id)}`, { signal }),
  });
  if (error) return <p role="alert">{error.message}</p>;
  if (!data) return <p>Loading…</p>;
  const byState = new Map<string, string[]>();
  for (const h of data.hosts) byState.set(h.wsusState, [...(byState.get(h.wsusState) ?? []), h.name]);
  return (
    <>
      <h1>
        {data.kb ? `KB${data.kb}: ` : ''}
        {data.title}
      </h1>
      <dl className="facts">
        <dt>Classification</dt>
        <dd>{data.classification ?? '—'}</dd>
        <dt>Severity</dt>
        <dd>{data.severity ?? '—'}</dd>
        <dt>Released</dt>
        <dd>{formatDate(data.releasedAt)}</dd>
        <dt>Products</dt>
        <dd>{data.products.join(', ') || '—'}</dd>
        <dt>Decision (hosts that need it)</dt>
        <dd data-testid="decision">
          allowed {data.decisions.allowed} · forbidden {data.decisions.forbidden} · deferred {data.decisions.deferred}
        </dd>
        {data.cves.length > 0 && (
          <>
            <dt>CVEs</dt>
            <dd>{data.cves.join(', ')}</dd>
          </>
        )}
      </dl>
      <section>
        <h2>Hosts by state</h2>
        {byState.size === 0 ? (
          <p>No host has reported this update.</p>
        ) : (
          <table className="compact" aria-label="Hosts by state">
            <tbody>
              {[...byState].map(([state, hosts]) => (
                <tr key={state}>
                  <th scope="row">{state}</th>
                  <td>
                    {hosts.map((h, i) => (
                      <span key={h}>
                        {i > 0 && ', '}
                        <Link to={`/hosts/${encodeURIComponent(h)}`}>{h}</Link>
                      </span>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h2>Failures by HRESULT</h2>
        {data.failures.length === 0 ? (
          <p>No failures.</p>
        ) : (
          <table className="compact" aria-label="Failures by HRESULT">
            <thead>
              <tr>
                <th scope="col">HRESULT</th>
                <th scope="col">Meaning</th>
                <th scope="col">Hosts</th>
              </tr>
            </thead>
            <tbody>
              {data.failures.map((f) => (
                <tr key={f.hresult}>
                  <td>
                    <code>{f.hresult}</code> {f.hresultName}
                  </td>
                  <td>{f.hresultMeaning}</td>
                  <td>{f.hosts.join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h2>Promotion through the rings</h2>
        <ul>
          {data.promotion.map((p) => (
            <li key={p.ring} data-ring={p.ring}>
              {p.ring}: {p.status ?? 'no gate'} {p.reason ? `— ${p.reason}` : ''}
            </li>
          ))}
        </ul>
      </section>
      <RelatedList label="Supersedes" items={data.supersedes} />
      <RelatedList label="Superseded by" items={data.supersededBy} />
      <RelatedList label="Prerequisites" items={data.prerequisites} />
    </>
  );
}
