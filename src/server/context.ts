/**
 * What the server's parts are given (one composition root: buildApp receives this; routes get it
 * as their plugin option). Nothing here is a global; tests build their own.
 */
import type { AgentAction } from '../domain/agent-protocol.ts';
import type { Database_ } from '../store/open.ts';
import type { EventFeed } from './event-feed.ts';
import type { ServerMetrics } from './metrics.ts';
import type { FleetViews } from './fleet/fleet-cache.ts';

/** Catalog operations the API exposes; the server entry wires them to src/catalog. */
export interface CatalogService {
  /** Fetches the catalog if it changed and imports it; resolves with what happened. */
  sync(
    signal?: AbortSignal,
  ): Promise<{ readonly changed: boolean; readonly versionId: number | null; readonly message: string }>;
}

/** What the update page shows from the catalog beyond the facts the policy uses (catalog/update-details.ts's showUpdate). */
export interface CatalogRelations {
  readonly kb: string | null;
  readonly title: string | null;
  readonly classification: string | null;
  readonly severity: string | null;
  readonly releaseDate: string | null;
  readonly products: readonly string[];
  readonly cveIds: readonly string[];
  readonly moreInfoUrls: readonly string[];
  readonly supersedes: readonly {
    readonly updateId: string;
    readonly kb: string | null;
    readonly title: string | null;
    readonly depth: number;
  }[];
  readonly supersededBy: readonly {
    readonly updateId: string;
    readonly kb: string | null;
    readonly title: string | null;
    readonly depth: number;
  }[];
  readonly prerequisites: readonly {
    readonly updates: readonly {
      readonly updateId: string;
      readonly kb: string | null;
      readonly title: string | null;
    }[];
  }[];
}

/** Looks one update up in the current catalog; undefined when there is none or it is not in it. */
export type CatalogDetails = (db: Database_['db'], updateId: string) => Promise<CatalogRelations | undefined>;

/** The agent gateway, seen from the API: wakes held check-ins when an action is created. */
export interface AgentWaker {
  /** With `action` (as a check-in hands it out), the woken check-ins answer with it and read nothing. */
  wake(hostIds: Iterable<string>, action?: AgentAction): number;
  isConnected(hostId: string): boolean;
}

/** The content cache, seen from the API (src/content). */
export interface ContentService {
  stats(): {
    readonly files: number;
    readonly bytes: number;
    readonly downloading: number;
    readonly upstreamBytes: number;
    readonly servedBytes: number;
  };
  list(): readonly {
    readonly key: string;
    readonly sha1: string | null;
    readonly sha256: string | null;
    readonly size: number;
    readonly fileName: string | null;
    readonly cachedAt: string;
    readonly lastNeededAt: string;
  }[];
  /** Deletes files no host needs after the grace period; says what was freed. */
  cleanup(): Promise<{
    readonly deleted: readonly { readonly key: string; readonly size: number }[];
    readonly bytesFreed: number;
    readonly kept: number;
    readonly inGrace: number;
  }>;
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
  /** Supersedence, prerequisites and CVEs for the update page (wired by the CLI to src/catalog). */
  readonly catalogDetails?: CatalogDetails;
  readonly agents?: AgentWaker;
  readonly content?: ContentService;
  /** The content cache's state of an update's files, for MISSING vs PENDING. */
  readonly cacheStateOf?: (updateId: string) => 'not-cached' | 'downloading' | 'cached';
  /** The fleet view kept between requests (buildApp makes it; fleet/fleet-cache.ts). */
  readonly fleet?: FleetViews;
}

export const iso = (d: Date): string => d.toISOString();
