/**
 * Payloads from the server's content cache (the ring does not allow `directDownload`): before a
 * download or install cycle, the agent asks the server for each allowed update's files, downloads
 * them from the cache (Range resume, digest checked by AgentHttp.download) and hands them to WUA
 * with `copyToCache` (IUpdate2.CopyToCache), so WUA installs without going to Microsoft. The
 * cycle then finds those updates downloaded and skips its own download.
 *
 * An update the server has no files for (no cache, or none in the catalog) is left to WUA.
 */
import { mkdir, rm } from 'node:fs/promises';
import type { UpdateRecord } from '../../domain/update.ts';
import { WuaClient, type ProviderChannel } from '../../wua/client.ts';
import type { Clock } from '../clock.ts';
import { DEFAULT_CYCLE_TIMEOUTS } from '../cycle.ts';
import { AgentHttpError, type AgentHttp } from './http.ts';
import { backoffDelayMs } from './schedule.ts';

/** How often a "still downloading on the server" answer is waited out before the cycle goes on without it. */
export const CONTENT_PENDING_RETRIES = 30;
const PENDING_RETRY_BASE_MS = 1_000;
const PENDING_RETRY_CAP_MS = 15_000;

/** What the server answers for GET /api/v1/agent/updates/{id}/content. */
interface UpdateContent {
  readonly files: readonly {
    readonly digest: string;
    readonly sha1: string | null;
    readonly sha256: string | null;
    readonly url: string;
  }[];
}

export interface CacheFetchDeps {
  readonly http: AgentHttp;
  readonly openProvider: () => ProviderChannel;
  readonly clock: Clock;
  readonly random: () => number;
  /** Directory for the files while they are handed over (deleted afterwards). */
  readonly dir: string;
  readonly log: (message: string) => void;
}

/** Asks until the server has the files (503 while it downloads); null when it has none for this update. */
async function filesOf(deps: CacheFetchDeps, updateId: string, signal: AbortSignal): Promise<UpdateContent | null> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (
        await deps.http.json<UpdateContent>('GET', `/api/v1/agent/updates/${updateId}/content`, undefined, signal)
      ).body;
    } catch (error) {
      if (
        error instanceof AgentHttpError &&
        (error.code === 'AGENT_CONTENT_NONE' || error.code === 'AGENT_CONTENT_NOT_ALLOWED')
      )
        return null;
      if (!(error instanceof AgentHttpError) || !error.retryable || attempt >= CONTENT_PENDING_RETRIES) throw error;
      await deps.clock.sleep(backoffDelayMs(attempt, deps.random, PENDING_RETRY_BASE_MS, PENDING_RETRY_CAP_MS), signal);
    }
  }
}

/**
 * Fetches the files of the updates among `updates` that WUA has not downloaded yet and gives them
 * to WUA. Returns the ids handed over. Throws when a download or the hand-over fails (the cycle is
 * not started: it would fetch from upstream, which the ring does not allow).
 */
export async function fetchFromServerCache(
  deps: CacheFetchDeps,
  updates: readonly UpdateRecord[],
  signal: AbortSignal,
): Promise<string[]> {
  const missing = updates.filter((u) => !u.isDownloaded);
  if (missing.length === 0) return [];
  await mkdir(deps.dir, { recursive: true });
  const ready: { updateId: string; paths: string[] }[] = [];
  for (const u of missing) {
    const content = await filesOf(deps, u.updateId.toLowerCase(), signal);
    if (!content || content.files.length === 0) continue;
    const paths: string[] = [];
    for (const f of content.files) {
      const path = `${deps.dir}/${f.digest}`;
      const digest = f.sha256
        ? { algorithm: 'sha256' as const, hex: f.sha256 }
        : { algorithm: 'sha1' as const, hex: f.sha1 ?? f.digest };
      await deps.http.download(f.url, path, digest, signal);
      paths.push(path);
    }
    ready.push({ updateId: u.updateId, paths });
  }
  if (ready.length === 0) return [];
  const client = await WuaClient.start(deps.openProvider(), {
    helloTimeoutMs: DEFAULT_CYCLE_TIMEOUTS.helloMs,
    abortGraceMs: DEFAULT_CYCLE_TIMEOUTS.abortGraceMs,
  });
  try {
    for (const r of ready) {
      const result = await client.request(
        { type: 'copyToCache', updateId: r.updateId, files: r.paths },
        { timeoutMs: DEFAULT_CYCLE_TIMEOUTS.rebootStatusMs, signal },
      );
      if (result.resultCode !== 'succeeded') {
        throw new AgentHttpError(
          'AGENT_COPY_TO_CACHE_FAILED',
          `WUA refused the cached files of ${r.updateId}: ${result.resultCode} ${result.hresult ?? ''} ${result.message ?? ''}`.trim(),
          null,
          true,
        );
      }
    }
  } finally {
    await client.close();
    // WUA keeps its own copy: ours go.
    await Promise.all(ready.flatMap((r) => r.paths).map((p) => rm(p, { force: true })));
  }
  deps.log(`${ready.length} update(s) from the server's content cache handed to WUA`);
  return ready.map((r) => r.updateId);
}
