/**
 * What the server's parts are given (one composition root: buildApp receives this; routes get it
 * as their plugin option). Nothing here is a global; tests build their own.
 */
import type { Database_ } from '../store/open.ts';
import type { EventFeed } from './event-feed.ts';
import type { ServerMetrics } from './metrics.ts';

/** Catalog operations the API exposes; the server entry wires them to src/catalog. */
export interface CatalogService {
  /** Fetches the catalog if it changed and imports it; resolves with what happened. */
  sync(signal?: AbortSignal): Promise<{ readonly changed: boolean; readonly versionId: number | null; readonly message: string }>;
}

export interface ServerDeps {
  readonly store: Database_;
  /** The clock: tests move it; nothing in the server calls Date.now() directly. */
  readonly now: () => Date;
  /** Cookies get `Secure` when the server is reached over TLS. */
  readonly secureCookies: boolean;
  /** Hex SHA-256 of the served certificate (put in enrollment tokens), null without TLS. */
  readonly tlsFingerprint: string | null;
  readonly feed: EventFeed;
  readonly metrics: ServerMetrics;
  readonly catalog?: CatalogService;
}

export const iso = (d: Date): string => d.toISOString();
