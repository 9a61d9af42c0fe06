/**
 * Live updates: one EventSource on /api/v1/events (the session cookie authenticates it). Every
 * server event invalidates the queries it concerns, so what changes on the server appears on the
 * page without a reload; subscribers (the activity page) also receive the events themselves.
 */
import { useEffect } from 'react';
import { useQueryClient } from '@tanstack/react-query';

export interface ServerEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

type Listener = (event: ServerEvent) => void;
const listeners = new Set<Listener>();

/** Query keys each event family touches; unknown events refresh everything (rare, cheap enough). */
function keysFor(type: string): readonly string[] | null {
  if (type.startsWith('action')) return ['actions', 'hosts', 'host', 'updates', 'update', 'overview'];
  if (type.startsWith('report') || type.startsWith('host')) return ['hosts', 'host', 'updates', 'update', 'overview'];
  if (type.startsWith('rule') || type.startsWith('ring') || type.startsWith('promotion')) return ['rules', 'rings', 'updates', 'update', 'hosts', 'host', 'overview', 'promotions'];
  if (type.startsWith('catalog')) return ['catalog', 'updates', 'overview'];
  if (type.startsWith('content')) return ['content', 'updates', 'overview'];
  if (type.startsWith('audit')) return ['audit'];
  return null;
}

export function useLiveEvents(enabled: boolean): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/api/v1/events', { withCredentials: true });
    const pending = new Set<string>();
    let timer: ReturnType<typeof setTimeout> | null = null;
    // Bursts of events (a fleet reporting) are coalesced into one refresh per key per 250 ms.
    const flush = () => {
      timer = null;
      for (const key of pending) void queryClient.invalidateQueries({ queryKey: [key] });
      pending.clear();
    };
    const onMessage = (message: MessageEvent<string>) => {
      let data: Record<string, unknown> = {};
      try {
        data = JSON.parse(message.data) as Record<string, unknown>;
      } catch (error) {
        console.warn('unreadable server event', message.data, error);
      }
      // The server sends every change as an unnamed event whose data names its kind ("rule.create").
      const type = String(data.kind ?? message.type);
      for (const listener of listeners) listener({ type, data });
      const keys = keysFor(type) ?? ['hosts', 'host', 'updates', 'update', 'overview', 'actions', 'audit'];
      keys.forEach((k) => pending.add(k));
      timer ??= setTimeout(flush, 250);
    };
    source.onmessage = onMessage;
    return () => {
      source.close();
      if (timer) clearTimeout(timer);
    };
  }, [enabled, queryClient]);
}

/** Receives every server event while mounted. */
export function useServerEvents(listener: Listener): void {
  useEffect(() => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, [listener]);
}
