/**
 * Derived per host × update states. Delivery is merged from what the host reported and what the
 * server's content cache holds; WAPT's four states and WSUS's seven are read off the three
 * independent facts (applicability, decision, delivery). docs/decisions.md ("Per host × update
 * state") has the same table in prose.
 */
import type {
  Applicability,
  Decision,
  Delivery,
  HostUpdateFacts,
  ServerCacheState,
  WaptState,
  WsusState,
} from './types.ts';

/**
 * The host's report wins (it knows its own disk); before the host has the bytes, the server
 * cache's state says how far the content has come.
 */
export function deriveDelivery(facts: HostUpdateFacts | undefined, cache: ServerCacheState): Delivery {
  const hresult = facts?.hresult ?? null;
  const attempts = facts?.attempts ?? 0;
  switch (facts?.delivery) {
    case 'installed':
      return { state: 'installed', hresult: null, attempts };
    case 'installed-pending-reboot':
      return { state: 'installed-pending-reboot', hresult: null, attempts };
    case 'failed':
      return { state: 'failed', hresult, attempts };
    case 'downloaded':
      return { state: 'downloaded-on-host', hresult, attempts };
    default:
      if (facts?.applicability === 'installed') return { state: 'installed', hresult: null, attempts };
      return {
        state: cache === 'cached' ? 'cached' : cache === 'downloading' ? 'downloading-on-server' : 'not-cached',
        hresult,
        attempts,
      };
  }
}

/**
 * WAPT's state, or null where WAPT lists nothing (not applicable, superseded, never scanned).
 * - OK: installed (whatever the decision: it is there).
 * - DISCARDED: needed but forbidden (WAPT hides it in WUA).
 * - MISSING: needed and allowed, but the server does not have the files yet (and the ring does
 *   not download directly from Microsoft).
 * - PENDING: needed and will be installed without anyone doing more — allowed with the files
 *   available, deferred (by delay or promotion), failed and due for a retry, or installed and
 *   waiting for its reboot.
 */
export function waptState(
  applicability: Applicability | 'unknown',
  decision: Decision,
  delivery: Delivery,
  directDownload: boolean,
): WaptState | null {
  if (delivery.state === 'installed') return 'OK';
  if (applicability === 'unknown' || applicability === 'not-applicable' || applicability === 'superseded') return null;
  if (applicability === 'installed') return 'OK';
  if (delivery.state === 'installed-pending-reboot') return 'PENDING';
  if (decision.kind === 'forbidden') return 'DISCARDED';
  if (decision.kind === 'deferred') return 'PENDING';
  if (!directDownload && (delivery.state === 'not-cached' || delivery.state === 'downloading-on-server'))
    return 'MISSING';
  return 'PENDING';
}

/**
 * WSUS's UpdateInstallationState: independent of approval, as in WSUS reports. Superseded counts
 * as not applicable (it will never be offered: its successor is), so it is not shown as needed.
 */
export function wsusState(applicability: Applicability | 'unknown', delivery: Delivery): WsusState {
  if (delivery.state === 'installed') return 'installed';
  if (delivery.state === 'installed-pending-reboot') return 'installed-pending-reboot';
  if (applicability === 'unknown') return 'unknown';
  if (applicability === 'not-applicable' || applicability === 'superseded') return 'not-applicable';
  if (applicability === 'installed') return 'installed';
  if (delivery.state === 'failed') return 'failed';
  if (delivery.state === 'downloaded-on-host') return 'downloaded';
  return 'needed';
}
