/**
 * `patchline agent service`: the long-running agent of an enrolled host. Two loops share one state
 * directory:
 *   - the check-in loop keeps one long-poll request open to the server (actions arrive within
 *     milliseconds), delivers what is queued on disk first (action progress, the scan report), and
 *     backs off with capped, jittered exponential delays while the server is unreachable;
 *   - the work loop runs one thing at a time: operator actions (scan, download, install, reboot —
 *     at once, whatever the window; an install runs pass after pass, install-action.ts), scans on
 *     the ring's interval (jittered), and the unattended install of what the policy allows inside
 *     a maintenance window (or at shutdown).
 * What the server must know goes through delivery.ts (on disk before it is sent); scans and
 * install cycles on the host are host-work.ts.
 */
import {
  AGENT_PROTOCOL_VERSION,
  type AgentAction,
  type AgentPolicy,
  type CheckinResponse,
  type PolicyAnswer,
} from '../../domain/agent-protocol.ts';
import type { Clock } from '../clock.ts';
import type { CycleSummary } from '../cycle.ts';
import { Delivery, describeError as describe } from './delivery.ts';
import { HostWork, type HostIo } from './host-work.ts';
import { AgentHttpError, REQUEST_TIMEOUT_MS, type AgentHttp } from './http.ts';
import { runInstallAction, type InstallActionPorts } from './install-action.ts';
import { backoffDelayMs, inAnyWindow, windowClosesInMs } from './schedule.ts';
import type { AgentState, RunningAction } from './state.ts';
import type { ScanResult } from './work.ts';

export type { HostIo } from './host-work.ts';

/** How long a check-in is held by the server when nothing happens. */
export const CHECKIN_WAIT_SECONDS = 25;
/** The work loop looks at the clock at least this often (maintenance windows open). */
const WORK_TICK_MS = 60_000;
/** After this many failed attempts an update is left out of unattended installs (an operator may still push it). */
export const MAX_UNATTENDED_ATTEMPTS = 3;
/** An install action asks this often for a decision on its latest report before it gives up (a server restored from a backup). */
const POLICY_BEHIND_ATTEMPTS = 8;

export interface AgentServiceDeps {
  readonly state: AgentState;
  readonly http: AgentHttp;
  readonly host: HostIo;
  readonly clock: Clock;
  readonly random: () => number;
  readonly agentVersion: string;
  readonly hostName: string;
  readonly log: (message: string) => void;
  readonly checkinWaitSeconds?: number;
}

type WorkItem =
  | { readonly kind: 'action'; readonly action: AgentAction; readonly resumed?: RunningAction }
  | { readonly kind: 'scan' }
  | { readonly kind: 'window' };

export class AgentService {
  private policy: AgentPolicy | null = null;
  /** The server's name for `policy`: sent with each check-in, so an unchanged policy is not sent back. */
  private policyDigest: string | null = null;
  private catalogSha256: string | null = null;
  private readonly queue: WorkItem[] = [];
  private wakeWork: AbortController = new AbortController();
  /** Set once the first check-in answered (the work loop needs the policy). */
  private firstCheckin: (() => void) | null = null;
  private readonly firstCheckinDone: Promise<void>;
  private readonly delivery: Delivery;
  private readonly work: HostWork;
  /** True while a check-in is answered or held (the server sees us). */
  connected = false;

  constructor(private readonly deps: AgentServiceDeps) {
    this.firstCheckinDone = new Promise((resolve) => {
      this.firstCheckin = resolve;
    });
    this.delivery = new Delivery(deps);
    this.work = new HostWork({
      ...deps,
      delivery: this.delivery,
      server: () => ({ policy: this.policy, catalogSha256: this.catalogSha256 }),
    });
  }

  /** Runs until `signal` aborts. An install action the host rebooted in the middle of goes on first. */
  async run(signal: AbortSignal): Promise<void> {
    await this.delivery.load();
    const running = await this.deps.state.runningAction();
    if (running) this.queue.push({ kind: 'action', action: running.action, resumed: running });
    await Promise.all([this.checkinLoop(signal), this.workLoop(signal)]);
  }

  // ── check-in ──────────────────────────────────────────────────────────────────────────────

  private async checkinLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let wait = 0;
    while (!signal.aborted) {
      try {
        await this.flush(signal);
        const waitSeconds = wait;
        const { body } = await this.deps.http.json<CheckinResponse>(
          'POST',
          '/api/v1/agent/checkin',
          {
            protocol: AGENT_PROTOCOL_VERSION,
            waitSeconds,
            agentVersion: this.deps.agentVersion,
            ...(await this.bootIdField()),
            ...(this.policy && this.policyDigest ? { policyDigest: this.policyDigest } : {}),
          },
          signal,
          waitSeconds * 1_000 + REQUEST_TIMEOUT_MS,
        );
        this.connected = true;
        failures = 0;
        wait = this.deps.checkinWaitSeconds ?? CHECKIN_WAIT_SECONDS;
        await this.onCheckin(body);
      } catch (error) {
        this.connected = false;
        if (signal.aborted) return;
        const delay = backoffDelayMs(failures++, this.deps.random);
        this.deps.log(`check-in failed (${describe(error)}); retrying in ${Math.round(delay / 100) / 10} s`);
        wait = 0;
        await this.deps.clock.sleep(delay, signal).catch(() => undefined);
      }
    }
  }

  private async onCheckin(res: CheckinResponse): Promise<void> {
    // Left out: the policy named by the digest we sent, which we hold.
    const policy = res.policy ?? this.policy;
    if (!policy) throw new Error('the check-in answer carries no policy and this agent holds none');
    const policyChanged = JSON.stringify(this.policy) !== JSON.stringify(policy);
    this.policy = policy;
    this.policyDigest = res.policyDigest ?? null;
    this.catalogSha256 = res.catalogSha256;
    const acked = await this.deps.state.acked();
    // The server holds less than we think (restored from a backup): our delta base is gone.
    if (acked && res.ackedReportSeq < acked.seq) await this.deps.state.setAcked(null);
    const received = new Set(await this.deps.state.received());
    for (const action of res.actions) {
      if (received.has(action.id)) continue;
      await this.deps.state.addReceived(action.id);
      await this.progress(action.id, { state: 'received' });
      this.enqueue({ kind: 'action', action });
    }
    if (policyChanged) this.enqueue({ kind: 'window' });
    this.firstCheckin?.();
    this.firstCheckin = null;
  }

  private async bootIdField(): Promise<{ bootId?: string }> {
    const id = await this.deps.host.bootId();
    return id === null ? {} : { bootId: id };
  }

  /** Sends what is queued on disk (progress, then the pending report). */
  flush(signal: AbortSignal): Promise<void> {
    return this.delivery.flush(signal);
  }

  private progress(actionId: string, p: Parameters<Delivery['progress']>[1]): Promise<void> {
    return this.delivery.progress(actionId, p);
  }

  // ── work ──────────────────────────────────────────────────────────────────────────────────

  private enqueue(item: WorkItem): void {
    this.queue.push(item);
    this.wakeWork.abort();
  }

  private async workLoop(signal: AbortSignal): Promise<void> {
    // The signal may have been aborted while run() loaded its state (a service stopped as it starts,
    // a lab host rebooted): an 'abort' listener added now would never fire, and run() never return.
    if (signal.aborted) return;
    await Promise.race([
      this.firstCheckinDone,
      new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
    ]);
    while (!signal.aborted) {
      const item = this.queue.shift() ?? this.dueItem();
      if (item) {
        try {
          await this.execute(item, signal);
        } catch (error) {
          if (signal.aborted) return;
          const retry =
            item.kind === 'scan'
              ? `; next scan in ${Math.round((this.work.nextScanAt - this.deps.clock.now().getTime()) / 1_000)} s`
              : '';
          this.deps.log(
            `${item.kind === 'action' ? `action ${item.action.id} (${item.action.action})` : item.kind} failed: ${describe(error)}${retry}`,
          );
          if (item.kind === 'action')
            await this.progress(item.action.id, { state: 'failed', message: describe(error) });
        }
        continue;
      }
      this.wakeWork = new AbortController();
      const untilScan = Math.max(0, this.work.nextScanAt - this.deps.clock.now().getTime());
      await this.deps.clock
        .sleep(Math.min(untilScan, WORK_TICK_MS), AbortSignal.any([signal, this.wakeWork.signal]))
        .catch(() => undefined);
      // A tick with nothing else due: a maintenance window may have opened.
      if (!this.queue.length && this.deps.clock.now().getTime() < this.work.nextScanAt)
        this.queue.push({ kind: 'window' });
    }
  }

  private dueItem(): WorkItem | null {
    return this.deps.clock.now().getTime() >= this.work.nextScanAt ? { kind: 'scan' } : null;
  }

  private async execute(item: WorkItem, signal: AbortSignal): Promise<void> {
    const policy = this.policy!;
    if (item.kind === 'scan') {
      await this.work.scanAndReport(signal);
      await this.unattendedInstall(policy, signal);
      return;
    }
    if (item.kind === 'window') {
      await this.unattendedInstall(policy, signal);
      return;
    }
    const { action } = item;
    if (action.action === 'install') {
      await this.installAction(action, item.resumed ?? null, signal);
      return;
    }
    this.deps.log(`action ${action.id}: ${action.action}`);
    await this.progress(action.id, { state: 'running' });
    if (action.action === 'scan') {
      const scan = await this.work.scanAndReport(signal);
      await this.progress(action.id, {
        state: 'succeeded',
        message: `${scan.needed.length} needed, ${scan.installed.length} installed${scan.rebootPending ? ', reboot pending' : ''}`,
      });
      return;
    }
    if (action.action === 'reboot') {
      await this.progress(action.id, { state: 'succeeded', phase: 'reboot', message: 'rebooting now' });
      await this.flush(signal).catch((error: unknown) =>
        this.deps.log(`progress not delivered before the reboot (${describe(error)}); it is sent after`),
      );
      await this.deps.host.reboot();
      return;
    }
    // download: one cycle of what is allowed (and named by the action), nothing installed.
    const scan = this.work.lastScan ?? (await this.work.scanAndReport(signal));
    const allowed = new Set(policy.allowedUpdateIds.map((id) => id.toLowerCase()));
    const ids = action.updateIds
      ? action.updateIds.map((id) => id.toLowerCase()).filter((id) => allowed.has(id))
      : [...allowed];
    if (!scan.needed.some((u) => ids.includes(u.updateId.toLowerCase()))) {
      await this.progress(action.id, { state: 'succeeded', message: 'nothing allowed is needed on this host' });
      return;
    }
    const result = await this.work.cycle(action.id, action.action, ids, signal, (phase, updateId, percent) => {
      void this.progress(action.id, { state: 'running', phase, percent, ...(updateId ? { updateId } : {}) });
    });
    const ok = result.outcome === 'done';
    await this.progress(action.id, {
      state: ok ? 'succeeded' : 'failed',
      message: result.message ?? result.outcome,
      hresult: result.hresult,
    });
  }

  /** An install action, pass after pass until nothing allowed is left (install-action.ts); resumed after a reboot. */
  private async installAction(action: AgentAction, resumed: RunningAction | null, signal: AbortSignal): Promise<void> {
    const { state } = this.deps;
    this.deps.log(`action ${action.id}: install${resumed ? ` resumed at pass ${resumed.nextPass}` : ''}`);
    await this.progress(action.id, {
      state: 'running',
      ...(resumed ? { message: `back after the reboot: pass ${resumed.nextPass}` } : {}),
    });
    const ports: InstallActionPorts = {
      scanAndReport: (s) => this.work.scanAndReport(s),
      policyAfterReport: (s) => this.policyAfterReport(s),
      install: (ids, s, onProgress) => this.work.cycle(action.id, 'install', ids, s, onProgress),
      lastHresult: async (id) => (await state.attempts())[id.toLowerCase()]?.hresult ?? null,
      progress: (p) => this.progress(action.id, p),
      save: (r) => state.setRunningAction(r),
      reboot: async (s) => {
        await this.flush(s).catch((error: unknown) =>
          this.deps.log(`not delivered before the reboot (${describe(error)}); sent after`),
        );
        await this.deps.host.reboot();
      },
      transient: (error) => error instanceof AgentHttpError && error.retryable,
      log: this.deps.log,
    };
    try {
      await runInstallAction(ports, action, resumed, signal);
    } catch (error) {
      // Stopped by the agent's own shutdown: the saved state resumes the action at the next start.
      if (!signal.aborted) await state.setRunningAction(null);
      throw error;
    }
  }

  /**
   * Delivers the report just queued, then asks the server what it allows now, decided on that report
   * (its `ackedReportSeq` is at least the one we sent). While the server is unreachable (restarted,
   * network cut) the action waits for it, as the check-in loop does: what is installed next is the
   * server's decision, and the action's progress waits on disk meanwhile. A server without the route
   * (older) answers 404: the policy of the last check-in is used.
   */
  private async policyAfterReport(signal: AbortSignal): Promise<AgentPolicy> {
    let behind = 0;
    for (let failures = 0; ;) {
      try {
        await this.flush(signal);
        const sent = (await this.deps.state.acked())?.seq ?? 0;
        const { body } = await this.deps.http.json<PolicyAnswer>('GET', '/api/v1/agent/policy', undefined, signal);
        failures = 0;
        if (body.ackedReportSeq >= sent) {
          this.policy = body.policy;
          return body.policy;
        }
        if (++behind >= POLICY_BEHIND_ATTEMPTS)
          throw new Error(
            `the server keeps deciding on report ${body.ackedReportSeq}, ours is ${sent}: the install action stops`,
          );
        this.deps.log(`the server decided on report ${body.ackedReportSeq}, ours is ${sent}: asking again`);
      } catch (error) {
        if (error instanceof AgentHttpError && error.status === 404) return this.policy!;
        if (!(error instanceof AgentHttpError) || !error.retryable || signal.aborted) throw error;
        this.deps.log(`the server's decision is not available (${describe(error)}); the install action waits`);
        failures++;
      }
      await this.deps.clock.sleep(backoffDelayMs(Math.max(failures - 1, behind), this.deps.random), signal);
    }
  }

  /** Installs, unattended, what the policy allows and the host needs — only inside a maintenance window. */
  private async unattendedInstall(policy: AgentPolicy, signal: AbortSignal, atShutdown = false): Promise<void> {
    if (!atShutdown && !inAnyWindow(policy.windows, this.deps.clock.now())) return;
    const scan = this.work.lastScan;
    if (!scan) return;
    const attempts = await this.deps.state.attempts();
    const allowed = new Set(policy.allowedUpdateIds.map((id) => id.toLowerCase()));
    const givenUp = (id: string): boolean =>
      attempts[id]?.resultCode === 'failed' && (attempts[id]?.attempts ?? 0) >= MAX_UNATTENDED_ATTEMPTS;
    const ids = [...allowed].filter((id) => !givenUp(id));
    if (!scan.needed.some((u) => ids.includes(u.updateId.toLowerCase()))) return;
    this.deps.log(
      `installing ${ids.length} allowed update(s) ${atShutdown ? 'at shutdown' : 'inside the maintenance window'}`,
    );
    // The cycle stops when the window closes (the install under way is aborted; WUA rolls it back):
    // nothing is installed outside the window, and what is left waits for the next one.
    const closesInMs =
      atShutdown || policy.windows.length === 0 ? null : windowClosesInMs(policy.windows, this.deps.clock.now());
    const windowClosed = new AbortController();
    const cycleOver = new AbortController();
    if (closesInMs !== null) {
      this.deps.clock.sleep(closesInMs, AbortSignal.any([signal, cycleOver.signal])).then(
        () => windowClosed.abort(new Error('the maintenance window closed')),
        () => undefined,
      );
    }
    let summary: CycleSummary;
    try {
      summary = await this.work.cycle(
        `unattended-${this.deps.clock.now().toISOString()}`,
        'install',
        ids,
        AbortSignal.any([signal, windowClosed.signal]),
      );
    } finally {
      cycleOver.abort();
    }
    if (windowClosed.signal.aborted && !signal.aborted) {
      this.deps.log(
        `the maintenance window closed (${summary.message ?? summary.outcome}); the rest waits for the next window`,
      );
      await this.work.scanAndReport(signal);
      return;
    }
    await this.afterInstall(policy, summary, signal, atShutdown);
  }

  /** The host is shutting down: install what is allowed first when the ring says so (installAtShutdown). */
  async onShutdown(signal: AbortSignal): Promise<void> {
    const policy = this.policy;
    if (!policy?.installAtShutdown) return;
    await this.unattendedInstall(policy, signal, true);
  }

  /** After an install: report the new state, then reboot as the ring says. */
  private async afterInstall(
    policy: AgentPolicy,
    summary: { rebootRequired: boolean; installed: readonly string[] },
    signal: AbortSignal,
    atShutdown = false,
  ): Promise<void> {
    const scan = await this.work.scanAndReport(signal);
    if (atShutdown) {
      // The host is going down anyway (it reboots into the installed state): the report goes now,
      // while the shutdown is held, else it waits on disk for the next boot.
      await this.flush(signal).catch((error: unknown) =>
        this.deps.log(`report not delivered before the shutdown (${describe(error)}); sent after the next boot`),
      );
      return;
    }
    const reboot =
      policy.reboot === 'always'
        ? summary.installed.length > 0
        : policy.reboot === 'if-required' && (summary.rebootRequired || scan.rebootPending);
    if (!reboot) return;
    this.deps.log('rebooting (ring reboot policy)');
    await this.flush(signal).catch((error: unknown) =>
      this.deps.log(`not delivered before the reboot (${describe(error)}); sent after`),
    );
    await this.deps.host.reboot();
  }

  /** Scans and queues the report now (delivery follows at once). */
  scanAndReport(signal: AbortSignal): Promise<ScanResult> {
    return this.work.scanAndReport(signal);
  }
}
