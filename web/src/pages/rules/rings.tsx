/**
 * Rings in order, each summarised; an admin edits one as JSON (every field of the ring) and the
 * server validates it — its stable error code and message are shown beside the editor.
 */
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../../api/client.ts';
import { useCan } from '../../api/session.tsx';

interface Ring {
  readonly name: string;
  readonly members: readonly string[];
  readonly defaultAllow: boolean;
  readonly allowedSeverities: readonly string[] | null;
  readonly installDelayDays: number;
  readonly maintenanceWindows: readonly {
    weekdays: readonly string[];
    start: string;
    durationMinutes: number;
    timeZone: string;
  }[];
  readonly rebootPolicy: string;
  readonly installAtShutdown: boolean;
  readonly directDownload: boolean;
  readonly [key: string]: unknown;
}

function windows(ring: Ring): string {
  if (ring.maintenanceWindows.length === 0) return 'any time';
  return ring.maintenanceWindows
    .map((w) => `${w.weekdays.join(',')} ${w.start} for ${w.durationMinutes} min (${w.timeZone})`)
    .join('; ');
}

function RingEditor({ ring, onDone }: { ring: Ring; onDone: () => void }) {
  const queryClient = useQueryClient();
  // The editable settings: the view's bookkeeping (name, who changed it when) is not sent back.
  const { name, updatedAt: _at, updatedBy: _by, ...rest } = ring;
  const [text, setText] = useState(JSON.stringify(rest, null, 2));
  const [problem, setProblem] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (body: unknown) => api(`/rings/${encodeURIComponent(name)}`, { method: 'PUT', body }),
    onSuccess: () => {
      void queryClient.invalidateQueries();
      onDone();
    },
    onError: (e) => setProblem(e.message),
  });
  const submit = () => {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      setProblem(`Not valid JSON: ${(e as Error).message}`);
      return;
    }
    save.mutate(body);
  };
  return (
    <div className="ring-editor">
      <label>
        Ring {name} (JSON)
        <textarea rows={16} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      </label>
      {problem && (
        <p role="alert" className="error">
          {problem}
        </p>
      )}
      <button type="button" onClick={submit} disabled={save.isPending}>
        Save ring
      </button>
      <button type="button" onClick={onDone}>
        Cancel
      </button>
    </div>
  );
}

export function RingsSection() {
  const canAdmin = useCan('admin');
  const rings = useQuery({
    queryKey: ['rings'],
    queryFn: ({ signal }) => api<{ rings: Ring[] }>('/rings', { signal }),
  });
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <section>
      <h2>Rings</h2>
      <table className="compact" aria-label="Rings">
        <thead>
          <tr>
            <th scope="col">Ring</th>
            <th scope="col">Members</th>
            <th scope="col">Default</th>
            <th scope="col">Severities</th>
            <th scope="col">Delay</th>
            <th scope="col">Windows</th>
            <th scope="col">Reboot</th>
            {canAdmin && <th scope="col">Edit</th>}
          </tr>
        </thead>
        <tbody>
          {(rings.data?.rings ?? []).map((r) => (
            <tr key={r.name}>
              <th scope="row">{r.name}</th>
              <td>{r.members.join(', ') || '—'}</td>
              <td>{r.defaultAllow ? 'allow' : 'forbid'}</td>
              <td>{r.allowedSeverities?.join(', ') ?? 'all'}</td>
              <td>{r.installDelayDays} days</td>
              <td>{windows(r)}</td>
              <td>
                {r.rebootPolicy}
                {r.installAtShutdown ? ', install at shutdown' : ''}
              </td>
              {canAdmin && (
                <td>
                  <button type="button" onClick={() => setEditing(r.name)} aria-label={`Edit ring ${r.name}`}>
                    Edit
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {editing && rings.data && (
        <RingEditor ring={rings.data.rings.find((r) => r.name === editing)!} onDone={() => setEditing(null)} />
      )}
    </section>
  );
}
