/**
 * Overview: fleet compliance per ring and overall (WSUS's states), hosts offline and needing a
 * reboot, the latest failures with the HRESULT's name and meaning, catalog age and cache size.
 */
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api } from '../../api/client.ts';
import type { Overview as OverviewData } from '../../api/types.ts';
import { StateChart } from '../../components/state-chart.tsx';
import { formatAge, formatBytes, formatDateTime } from '../../components/format.ts';

export function Overview() {
  const { data, error } = useQuery({
    queryKey: ['overview'],
    queryFn: ({ signal }) => api<OverviewData>('/overview', { signal }),
  });
  if (error) return <p role="alert">{error.message}</p>;
  if (!data) return <p>Loading…</p>;
  const rows = [
    { label: 'All hosts', counts: data.all },
    ...data.rings.map((r) => ({ label: r.ring, counts: r.counts })),
  ];
  return (
    <>
      <h1>Overview</h1>
      <section className="tiles" aria-label="Fleet at a glance">
        <div className="tile">
          <span className="number" data-testid="hosts-total">
            {data.hosts}
          </span>{' '}
          hosts
        </div>
        <div className="tile">
          <Link to="/hosts?online=false">
            <span className="number" data-testid="hosts-offline">
              {data.hostsOffline}
            </span>{' '}
            offline
          </Link>
        </div>
        <div className="tile">
          <Link to="/hosts?rebootPending=true">
            <span className="number" data-testid="hosts-reboot">
              {data.hostsRebootPending}
            </span>{' '}
            need a reboot
          </Link>
        </div>
        <div className="tile">
          Catalog <span data-testid="catalog-age">{formatAge(data.catalog.importedAt)}</span>
        </div>
        <div className="tile">
          Content cache <span data-testid="cache-size">{formatBytes(data.content.bytes)}</span> in {data.content.files}{' '}
          files
        </div>
      </section>
      <StateChart title="Compliance per ring" rows={rows} />
      <section>
        <h2>Latest failures</h2>
        {data.latestFailures.length === 0 ? (
          <p>No failures.</p>
        ) : (
          <table className="compact" aria-label="Latest failures">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Host</th>
                <th scope="col">Update</th>
                <th scope="col">HRESULT</th>
                <th scope="col">Meaning</th>
              </tr>
            </thead>
            <tbody>
              {data.latestFailures.map((f) => (
                <tr key={`${f.host}/${f.updateId}`}>
                  <td>{formatDateTime(f.at)}</td>
                  <td>
                    <Link to={`/hosts/${encodeURIComponent(f.host)}`}>{f.host}</Link>
                  </td>
                  <td>
                    <Link to={`/updates/${f.updateId}`}>{f.kb ? `KB${f.kb}` : f.title}</Link>
                  </td>
                  <td>
                    <code>{f.hresult}</code> {f.hresultName}
                  </td>
                  <td>{f.hresultMeaning}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
