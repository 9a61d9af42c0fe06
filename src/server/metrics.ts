/**
 * Prometheus metrics in the text exposition format, hand-written (a few counters, gauges and one
 * histogram do not need prom-client). Parts of the server get named instruments from one
 * registry passed in (no global): the HTTP layer observes request latency, the agent gateway
 * sets `agents connected` and counts reports, the content cache counts upstream and served bytes.
 * Gauges that are facts of the store (hosts, actions queued) are read at scrape time.
 */

type Labels = Readonly<Record<string, string>>;

const labelKey = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  set(value: number, labels?: Labels): void;
}
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

/** Request latency buckets in seconds: API calls are milliseconds; SSE and big reports are not. */
export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: (() => Promise<void>)[] = [];

  counter(name: string, help: string): Counter {
    const values = new Map<string, number>();
    this.add({
      name,
      help,
      type: 'counter',
      render: () => [...values].map(([k, v]) => `${name}${k ? `{${k}}` : ''} ${v}`),
    });
    return {
      inc: (labels = {}, by = 1) => void values.set(labelKey(labels), (values.get(labelKey(labels)) ?? 0) + by),
    };
  }

  gauge(name: string, help: string): Gauge {
    const values = new Map<string, number>();
    this.add({
      name,
      help,
      type: 'gauge',
      render: () => [...values].map(([k, v]) => `${name}${k ? `{${k}}` : ''} ${v}`),
    });
    return { set: (value, labels = {}) => void values.set(labelKey(labels), value) };
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const series = new Map<string, { counts: number[]; sum: number; count: number }>();
    this.add({
      name,
      help,
      type: 'histogram',
      render: () =>
        [...series].flatMap(([k, s]) => {
          const sep = k ? `${k},` : '';
          const lines = buckets.map((b, i) => `${name}_bucket{${sep}le="${b}"} ${s.counts[i]}`);
          lines.push(
            `${name}_bucket{${sep}le="+Inf"} ${s.count}`,
            `${name}_sum${k ? `{${k}}` : ''} ${s.sum}`,
            `${name}_count${k ? `{${k}}` : ''} ${s.count}`,
          );
          return lines;
        }),
    });
    return {
      observe(value, labels = {}) {
        const key = labelKey(labels);
        let s = series.get(key);
        if (!s) series.set(key, (s = { counts: buckets.map(() => 0), sum: 0, count: 0 }));
        buckets.forEach((b, i) => {
          if (value <= b) s.counts[i]! += 1;
        });
        s.sum += value;
        s.count += 1;
      },
    };
  }

  /** Runs before each scrape (reads gauges from the store). */
  collect(fn: () => Promise<void>): void {
    this.collectors.push(fn);
  }

  async render(): Promise<string> {
    for (const fn of this.collectors) await fn();
    const out: string[] = [];
    for (const f of this.families.values())
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    return `${out.join('\n')}\n`;
  }

  private add(family: Family): void {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.set(family.name, family);
  }
}

/** The instruments the issue names, shared by every part of the server. */
export interface ServerMetrics {
  readonly registry: MetricsRegistry;
  readonly requestDuration: Histogram;
  readonly agentsConnected: Gauge;
  readonly reportsIngested: Counter;
  readonly upstreamBytes: Counter;
  readonly contentServedBytes: Counter;
  readonly hosts: Gauge;
  readonly actionsQueued: Gauge;
}

export function createServerMetrics(): ServerMetrics {
  const registry = new MetricsRegistry();
  return {
    registry,
    requestDuration: registry.histogram(
      'patchline_http_request_duration_seconds',
      'API request latency by route, method and status class.',
      LATENCY_BUCKETS_S,
    ),
    agentsConnected: registry.gauge('patchline_agents_connected', 'Agents holding a connection to this server.'),
    reportsIngested: registry.counter('patchline_reports_ingested_total', 'Agent scan and result reports applied.'),
    upstreamBytes: registry.counter(
      'patchline_upstream_bytes_total',
      'Bytes downloaded from upstream (catalog and update payloads).',
    ),
    contentServedBytes: registry.counter(
      'patchline_content_served_bytes_total',
      'Payload bytes served to agents from the content cache.',
    ),
    hosts: registry.gauge('patchline_hosts', 'Enrolled hosts by status (online, offline, revoked).'),
    actionsQueued: registry.gauge(
      'patchline_action_hosts_queued',
      'Per-host action steps not yet finished (queue depth).',
    ),
  };
}
