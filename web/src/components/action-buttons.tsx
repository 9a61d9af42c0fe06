/** Scan / download / install / reboot now, for hosts or a ring; shown only to operators and admins. */
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { api } from '../api/client.ts';
import { useCan } from '../api/session.tsx';
import { toolbarKeys } from './keyboard.ts';

const ACTIONS = [
  ['scan', 'Scan now'],
  ['download', 'Download now'],
  ['install', 'Install now'],
  ['reboot', 'Reboot now'],
] as const;

export function ActionButtons({ hosts }: { hosts: readonly string[] }) {
  const canOperate = useCan('operator');
  const [started, setStarted] = useState<{ id: string; action: string } | null>(null);
  const trigger = useMutation({
    mutationFn: (action: string) => api<{ id: string }>('/actions', { method: 'POST', body: { action, hosts } }),
    onSuccess: (result, action) => setStarted({ id: result.id, action }),
  });
  if (!canOperate) return null;
  return (
    <div className="toolbar" role="toolbar" aria-label="Actions" onKeyDown={toolbarKeys}>
      {ACTIONS.map(([action, label]) => (
        <button key={action} type="button" disabled={trigger.isPending} onClick={() => trigger.mutate(action)}>
          {label}
        </button>
      ))}
      {started && (
        <span role="status">
          {started.action} started — <Link to={`/activity?action=${started.id}`}>follow it</Link>
        </span>
      )}
      {trigger.error && <span role="alert">{trigger.error.message}</span>}
    </div>
  );
}
