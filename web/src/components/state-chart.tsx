/**
 * Compliance at a glance: one horizontal stacked bar per ring (and "All hosts") with WSUS's states
 * in fixed colours, drawn by Chart.js on a canvas. The numbers are also in a table beside it, so
 * the chart is never the only way to read them.
 */
import { useEffect, useRef } from 'react';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export const WSUS_STATES = [
  'installed',
  'needed',
  'failed',
  'installed-pending-reboot',
  'not-applicable',
  'unknown',
] as const;
export type WsusState = (typeof WSUS_STATES)[number];

const COLOURS: Record<WsusState, string> = {
  installed: '#2e7d32',
  needed: '#f9a825',
  failed: '#c62828',
  'installed-pending-reboot': '#1565c0',
  'not-applicable': '#9e9e9e',
  unknown: '#5d4037',
};

export interface ComplianceRow {
  readonly label: string;
  readonly counts: Partial<Record<WsusState, number>>;
}

export function StateChart({ rows, title }: { rows: readonly ComplianceRow[]; title: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: 'bar',
      data: {
        labels: rows.map((r) => r.label),
        datasets: WSUS_STATES.map((state) => ({
          label: state,
          data: rows.map((r) => r.counts[state] ?? 0),
          backgroundColor: COLOURS[state],
        })),
      },
      options: {
        indexAxis: 'y',
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true } },
        plugins: { legend: { position: 'bottom' } },
      },
    });
    return () => chart.destroy();
  }, [rows]);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div className="chart-canvas" style={{ height: `${Math.max(120, rows.length * 48 + 80)}px` }}>
        <canvas
          ref={canvas}
          role="img"
          aria-label={`${title}: ${rows.map((r) => `${r.label} ${WSUS_STATES.map((s) => `${r.counts[s] ?? 0} ${s}`).join(', ')}`).join('; ')}`}
        />
      </div>
      <table className="compact" aria-label={`${title} (numbers)`}>
        <thead>
          <tr>
            <th scope="col">Ring</th>
            {WSUS_STATES.map((s) => (
              <th scope="col" key={s}>
                {s}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.label}>
              <th scope="row">{r.label}</th>
              {WSUS_STATES.map((s) => (
                <td key={s} data-state={s}>
                  {r.counts[s] ?? 0}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
