/**
 * Live updates: server events from /api/v1/events (the session cookie authenticates it). Every
 * server event invalidates the queries it concerns, so what changes on the server appears on the
 * page without a reload; subscribers (the activity page) also receive the events themselves.
 *
 * One EventSource per browser, not per tab: an EventSource holds an HTTP/1.1 connection for good,
 * and a browser opens at most six to one host, so six console tabs used to starve every other
 * request of the seventh (its grid pages never arrived). The tab holding the Web Lock below keeps
 * the stream and relays each event to the other tabs over a BroadcastChannel; when it closes, the
 * next tab takes the lock over. Without Web Locks (plain HTTP on a non-local name is not a secure
 * context) each tab keeps its own stream, as before.
 */
import { useEffect } from 'react';
import { useQueryClient } from '@tanstack/react-query';

export interface ServerEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

type Listener = (event: ServerEvent) => void;
const listeners = new Set<Listener>();

const LOCK_NAME = 'patchline-live-events';
const CHANNEL_NAME = 'patchline-live-events';
/** Bursts of events (a fleet reporting) are coalesced into one refresh per key per window. */
const COALESCE_MS = 250;

/** Query keys each event family touches; unknown events refresh everything (rare, cheap enough). */
function keysFor(type: string): readonly string[] {
  // Installs and failures are a promotion's evidence: its status moves with them.
  if (type.startsWith('action')) return ['actions', 'hosts', 'host', 'updates', 'update', 'overview', 'promotions'];
  if (type.startsWith('report') || type.startsWith('host'))
    return ['hosts', 'host', 'updates', 'update', 'overview', 'promotions'];
  if (type.startsWith('rule') || type.startsWith('ring') || type.startsWith('promotion'))
    return ['rules', 'rings', 'updates', 'update', 'hosts', 'host', 'overview', 'promotions'];
  if (type.startsWith('catalog')) return ['catalog', 'updates', 'overview'];
  if (type.startsWith('content')) return ['content', 'updates', 'overview'];
  if (type.startsWith('audit')) return ['audit'];
  return ['hosts', 'host', 'updates', 'update', 'overview', 'actions', 'audit', 'promotions'];
}

function parseEvent(message: MessageEvent<string>): ServerEvent {
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(message.data) as Record<string, unknown>;
  } catch (error) {
    console.warn('unreadable server event', message.data, error);
  }
  // The server sends every change as an unnamed event whose data names its kind ("rule.create").
  return { type: String(data.kind ?? message.type), data };
}

export function useLiveEvents(enabled: boolean): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!enabled) return;
    const stop = new AbortController();
    const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL_NAME) : null;
    const pending = new Set<string>();
    let timer: ReturnType<typeof setTimeout> | null = null;
    let source: EventSource | null = null;

    const flush = () => {
      timer = null;
      for (const key of pending) void queryClient.invalidateQueries({ queryKey: [key] });
      pending.clear();
    };
    const deliver = (event: ServerEvent) => {
      for (const listener of listeners) listener(event);
      keysFor(event.type).forEach((k) => pending.add(k));
      timer ??= setTimeout(flush, COALESCE_MS);
    };
    channel?.addEventListener('message', (message: MessageEvent<ServerEvent>) => deliver(message.data));

    /** Opens the stream for every tab. `takeover`: another tab held it, so events may have been missed. */
    const lead = (takeover: boolean): Promise<void> => {
      // The lock may be granted after this effect was cleaned up (StrictMode, a quick sign-out).
      if (stop.signal.aborted) return Promise.resolve();
      let opened = false;
      source = new EventSource('/api/v1/events', { withCredentials: true });
      source.onopen = () => {
        // A reconnect or a takeover may have missed events: refresh what is shown once.
        if (opened || takeover) void queryClient.invalidateQueries();
        opened = true;
      };
      source.onmessage = (message: MessageEvent<string>) => {
        const event = parseEvent(message);
        deliver(event);
        channel?.postMessage(event);
      };
      return new Promise((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    };

    if (channel && typeof navigator.locks?.request === 'function') {
      const locks = navigator.locks;
      locks
        .request(LOCK_NAME, { ifAvailable: true }, async (lock) => {
          if (lock) return lead(false);
          // Another tab streams: follow it over the channel until it closes, then take over.
          await locks.request(LOCK_NAME, { signal: stop.signal }, () => lead(true));
        })
        .catch((error: unknown) => {
          // Leaving the page (or signing out) while waiting for the lock aborts the wait: expected.
          if (stop.signal.aborted) return;
          console.error('live events: lock failed, streaming in this tab', error);
          void lead(false);
        });
    } else {
      void lead(false);
    }
    return () => {
      stop.abort();
      source?.close();
      channel?.close();
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
