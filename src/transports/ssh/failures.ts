/**
 * The SSH transport's failures, classified the way the engine decides on them (transport.ts):
 * unreachable (refused, timed out, dropped: wait for the host), auth (the target refused our
 * credentials: fail the host at once, saying which user and method), host-key (unknown or changed
 * key: fail at once with both fingerprints), internal (anything else: exit 70, cause kept).
 */
import { TransportError, type TransportFailureKind } from '../transport.ts';

export type SshTransportError = TransportError;

/** Stable codes (docs/errors.md) by kind. */
export const SSH_ERROR_CODES = {
  unreachable: 'SSH_UNREACHABLE',
  auth: 'SSH_AUTH_FAILED',
  unknownKey: 'SSH_HOST_KEY_UNKNOWN',
  changedKey: 'SSH_HOST_KEY_CHANGED',
  internal: 'SSH_INTERNAL',
  protocol: 'SSH_PROTOCOL',
} as const;

/** Socket errors that mean "the host is not there (now)". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** Was this error the connection going away (refused, reset, timed out, closed under us)? */
export function isConnectionLoss(error: unknown): boolean {
  const e = error as { code?: unknown; level?: unknown; name?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
  if (e.level === 'client-timeout' || e.level === 'client-socket') return true;
  if (e.name === 'TimeoutError') return true;
  return (
    typeof e.message === 'string' &&
    /Not connected|No response from server|Connection lost|Channel open failure|socket (hang up|closed)|Keepalive timeout|connection closed/i.test(
      e.message,
    )
  );
}

/** A classified failure with its SSH code; `cause` keeps the original error. */
export function sshError(
  kind: TransportFailureKind,
  host: string,
  code: string,
  message: string,
  cause?: unknown,
): TransportError {
  return new TransportError(kind, host, message, { code, ...(cause === undefined ? {} : { cause }) });
}
