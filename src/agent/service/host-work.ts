/**
 * The agent's work on its own host, for every caller (the scan schedule, unattended installs,
 * operator actions): scan and queue the report (delivery.ts sends it), and run one download or
 * install cycle — payloads first from the server's content cache unless the ring lets WUA fetch
 * them, attempts recorded per update. It keeps the last scan (what the host needs now) and when the
 * next scheduled scan is due. The scan runs offline against the server's current cab (downloaded
 * only when it changed, verified as WUA would) or online when the ring says so.
 */
import { access, rename, unlink } from 'node:fs/promises';
import type { AgentPolicy, CatalogInfo } from '../../domain/agent-protocol.ts';
import type { ProviderChannel } from '../../wua/client.ts';
import type { Clock } from '../clock.ts';
import type { CycleSummary } from '../cycle.ts';
import { fetchFromServerCache } from './content.ts';
import type { Delivery } from './delivery.ts';
import type { AgentHttp } from './http.ts';
import { buildReport, inventoryOf } from './inventory.ts';
import { jitteredIntervalMs } from './schedule.ts';
import type { AgentState } from './state.ts';
import { runWorkCycle, scanInventory, type ScanResult, type ScanSource } from './work.ts';

/** The host under the agent: its WUA provider, its reboot, its boot id. Lab and Windows differ only here. */
export interface HostIo {
  openProvider(): ProviderChannel;
  /** Reboots the host; the service is stopped by it (its process dies, or the lab kills it). */
  reboot(): Promise<void>;
  bootId(): Promise<string | null>;
  /** Verifies a downloaded cab's Authenticode signature as WUA would; throws when it fails. */
  verifyCab(path: string): Promise<void>;
}

export interface HostWorkDeps {
  readonly state: AgentState;
  readonly http: AgentHttp;
  readonly host: HostIo;
  readonly clock: Clock;
  readonly random: () => number;
  readonly hostName: string;
  readonly log: (message: string) => void;
  readonly delivery: Delivery;
  /** What the last check-in said: the ring's policy and the server's current cab. */
  readonly server: () => { readonly policy: AgentPolicy | null; readonly catalogSha256: string | null };
}

/** A failed scan is retried after this, doubling per failure in a row up to SCAN_RETRY_CAP_MS. */
export const SCAN_RETRY_BASE_MS = 60_000;
export const SCAN_RETRY_CAP_MS = 3_600_000;

export type CyclePhase = 'search' | 'download' | 'install';

export class HostWork {
  /** The last scan: what the host needs and has now. */
  lastScan: ScanResult | null = null;
  /** When the next scheduled scan is due (ms since the epoch). */
  nextScanAt = 0;
  /** Scans failed in a row (the retry waits longer after each). */
  private scanFailures = 0;

  constructor(private readonly deps: HostWorkDeps) {}

  /**
   * Scans, queues the report on disk, and sends it; the next scan is due one jittered interval later.
   * A failed scan (the catalog not fetched, the Windows Update Agent failing) is retried after 1 min,
   * then 2, 4 … up to 1 h: never at once, which would spin the agent and hammer the server.
   */
  async scanAndReport(signal: AbortSignal): Promise<ScanResult> {
    const startedAt = this.deps.clock.now().getTime();
    try {
      const scan = await this.scanOnce(signal);
      this.scanFailures = 0;
      return scan;
    } catch (error) {
      const retryMs = Math.min(SCAN_RETRY_CAP_MS, SCAN_RETRY_BASE_MS * 2 ** Math.min(this.scanFailures++, 20));
      this.nextScanAt = startedAt + jitteredIntervalMs(retryMs, this.deps.random);
      throw error;
    }
  }

  private async scanOnce(signal: AbortSignal): Promise<ScanResult> {
    const { policy, catalogSha256 } = this.deps.server();
    const source = await this.scanSource(signal);
    const scannedAt = this.deps.clock.now();
    const scan = await scanInventory(source, this.workDeps(), signal);
    this.lastScan = scan;
    this.nextScanAt = scannedAt.getTime() + jitteredIntervalMs(policy!.scanIntervalSeconds * 1_000, this.deps.random);
    const { state } = this.deps;
    const inventory = inventoryOf(scan.needed, scan.installed, await state.attempts());
    const seq = (await state.lastSeq()) + 1;
    await state.setLastSeq(seq);
    const report = buildReport(seq, await state.acked(), inventory, {
      scannedAt: scannedAt.toISOString(),
      source: source.kind,
      catalogSha256: source.kind === 'offline' ? catalogSha256 : null,
      rebootPending: scan.rebootPending,
    });
    await state.setPending({ report, inventory });
    this.deps.delivery.flushSoon();
    return scan;
  }

  /** One download or install cycle limited to `ids`; its per-update results go to the attempts file. */
  async cycle(
    id: string,
    mode: 'download' | 'install',
    ids: readonly string[],
    signal: AbortSignal,
    onProgress?: (phase: CyclePhase, updateId: string | null, percent: number) => void,
  ): Promise<CycleSummary> {
    const { policy } = this.deps.server();
    const source = await this.scanSource(signal);
    // Payloads come from the server's content cache unless the ring lets WUA fetch them itself.
    if (policy && !policy.directDownload && this.lastScan) {
      const wanted = new Set(ids.map((id) => id.toLowerCase()));
      await fetchFromServerCache(
        {
          http: this.deps.http,
          openProvider: () => this.deps.host.openProvider(),
          clock: this.deps.clock,
          random: this.deps.random,
          dir: this.deps.state.path('content'),
          log: this.deps.log,
        },
        this.lastScan.needed.filter((u) => wanted.has(u.updateId.toLowerCase())),
        signal,
      );
    }
    const attempts = await this.deps.state.attempts();
    let lastPct = -10;
    const { summary, attempts: next } = await runWorkCycle(
      {
        id,
        mode,
        updateIds: ids,
        source,
        onProgress: (phase, updateId, percent) => {
          // One progress message per 10 % keeps a 10,000-host install from flooding the server.
          if (Math.floor(percent / 10) * 10 === lastPct && percent < 100) return;
          lastPct = Math.floor(percent / 10) * 10;
          onProgress?.(phase, updateId, percent);
        },
      },
      attempts,
      this.workDeps(),
      signal,
    );
    await this.deps.state.setAttempts(next);
    return summary;
  }

  private workDeps() {
    return { openProvider: () => this.deps.host.openProvider(), clock: this.deps.clock, hostName: this.deps.hostName };
  }

  /** Offline against the server's current cab (downloaded only when it changed, verified), or online. */
  private async scanSource(signal: AbortSignal): Promise<ScanSource> {
    const { policy, catalogSha256 } = this.deps.server();
    if (policy?.scanSource === 'online' || catalogSha256 === null) return { kind: 'online' };
    const cabPath = this.deps.state.path(`catalog-${catalogSha256}.cab`);
    const have = await access(cabPath).then(
      () => true,
      () => false,
    );
    if (!have) {
      const { body } = await this.deps.http.json<CatalogInfo>('GET', '/api/v1/agent/catalog', undefined, signal);
      const downloaded = `${cabPath}.download`;
      await this.deps.http.download(body.url, downloaded, { algorithm: 'sha256', hex: body.sha256 }, signal);
      try {
        await this.deps.host.verifyCab(downloaded);
      } catch (error) {
        await unlink(downloaded);
        throw error;
      }
      await rename(downloaded, cabPath);
    }
    return { kind: 'offline', cabPath };
  }
}
