/** The host's running action, live: progress events from the server appear as they arrive. */
import { useCallback, useState } from 'react';
import { useServerEvents, type ServerEvent } from '../../api/live.ts';

export function HostProgress({ host }: { host: string }) {
  const [lines, setLines] = useState<readonly string[]>([]);
  const onEvent = useCallback(
    (event: ServerEvent) => {
      if (!event.type.startsWith('action')) return;
      if (event.data.host !== host) return;
      const text = [
        event.data.state,
        event.data.phase,
        event.data.percent !== undefined ? `${String(event.data.percent)}%` : null,
        event.data.message,
      ]
        .filter((x) => x !== undefined && x !== null && x !== '')
        .join(' · ');
      setLines((prev) => [...prev.slice(-19), text]);
    },
    [host],
  );
  useServerEvents(onEvent);
  if (lines.length === 0) return null;
  return (
    <section aria-label="Live progress">
      <h2>Progress</h2>
      <ol className="live" aria-live="polite" data-testid="host-progress">
        {lines.map((l, i) => (
          <li key={i}>{l}</li>
        ))}
      </ol>
    </section>
  );
}
