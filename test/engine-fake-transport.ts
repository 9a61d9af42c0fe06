/**
 * An in-memory fleet for engine tests: simulated hosts (boot ids, reboot time, reachability,
 * applicable updates with prerequisites, failures, rollbacks) and a simulated agent per cycle that
 * streams its events to the engine's real HTTP callback, keeps its log for fetchLog, waits for its
 * log to be safe and then reboots the host itself — the contract of docs/internals.md.
 *
 * It also counts what tests assert on: installs per update (nothing installed twice) and the most
 * hosts busy at once (launch → agent done and, if it rebooted, host back).
 */
import type { AgentEvent, AgentEventBody, CycleOutcome, CycleRequest } from '../src/domain/agent-log.ts';
import { selectUpdates } from '../src/domain/filters.ts';
import type { UpdateRecord } from '../src/domain/update.ts';
import { usageError } from '../src/domain/errors.ts';
import type { Clock } from '../src/domain/clock.ts';
import { systemClock } from '../src/engine/clock.ts';
import {
  LaunchRefusedError,
  TransportError,
  type HostStatus,
  type LaunchResult,
  type Transport,
} from '../src/transports/transport.ts';

export interface FakeUpdateSpec {
  readonly id: string;
  readonly kb: string;
  readonly title?: string;
  readonly classification?: string;
  /** Default 'always': installed but only committed by a reboot. */
  readonly rebootBehavior?: 'never' | 'always';
  /** Update ids that must be installed and committed (rebooted) before this one is offered. */
  readonly requires?: readonly string[];
  /** The first N install attempts fail with `hresult`. */
  readonly failTimes?: number;
  readonly hresult?: string;
  /** false: rolls back at every reboot (offered again: an update loop). */
  readonly sticks?: boolean;
}

export interface FakeHostSpec {
  readonly name: string;
  readonly updates: readonly FakeUpdateSpec[];
  readonly pendingReboot?: boolean;
  /** How long a reboot keeps the host down. Default 30 ms. */
  readonly rebootMs?: number;
  /** false: the host never answers after its next reboot. */
  readonly comesBack?: boolean;
  /** Per install/download step of the simulated agent. Default 5 ms. */
  readonly stepMs?: number;
  /** The agent's callback POSTs never arrive (firewall): only the log hand-over works. */
  readonly streamBroken?: boolean;
  /** The task scheduler refuses to start the agent. */
  readonly refuseLaunch?: boolean;
  /** In this cycle, the first install runs until the agent is told to stop (a long CU install). */
  readonly installUntilStoppedInCycle?: number;
  /** The scheduler confirms the start this late: the agent's first events arrive before launch returns. */
  readonly slowLaunchMs?: number;
  /** Posts events in batches of 3, each batch in reverse order and sent twice (retries, reordering). */
  readonly chaoticStream?: boolean;
  /**
   * In this cycle the agent's own reboot does not happen: `warning` says so after `rebooting`
   * (the lab's "fetch failed" to its daemon), or `silent`: the agent exits without a word.
   */
  readonly agentRebootFails?: { readonly cycle: number; readonly how: 'warning' | 'silent' };
  /** Preparing the target (copying the client) takes this long; a stop of the run cuts it short. */
  readonly slowPrepareMs?: number;
  /** The agent sends its `rebooting` twice (a retried POST whose first answer was lost), as the lab's agent can. */
  readonly resendsRebooting?: boolean;
  /** This transport call throws `error` (from the host's boot number `fromBoot` on; default 1). */
  readonly throws?: {
    readonly op: 'prepare' | 'launch' | 'probe' | 'isRunning' | 'fetchLog' | 'reboot';
    readonly error: Error;
    readonly fromBoot?: number;
  };
}

interface InstalledState {
  readonly committed: boolean;
}

class FakeAgent {
  readonly events: AgentEvent[] = [];
  running = true;
  aborted = false;
  logSafe = false;
  acked = 0;
  finishedSeq = 0;
  /** Highest seq handed to a POST so far. */
  posted = 0;
  flushing: Promise<void> | null = null;
  readonly streamErrors: string[] = [];
  private seq = 0;
  private readonly safeWaiters: (() => void)[] = [];
  private readonly stopWaiters: (() => void)[] = [];

  abort(): void {
    this.aborted = true;
    for (const w of this.stopWaiters.splice(0)) w();
  }

  untilStopped(): Promise<void> {
    return this.aborted ? Promise.resolve() : new Promise((resolve) => this.stopWaiters.push(resolve));
  }

  constructor(
    readonly pid: number,
    readonly request: CycleRequest,
    private readonly fleet: FakeFleet,
  ) {}

  push(body: AgentEventBody): AgentEvent {
    const event = { ...body, seq: ++this.seq, at: this.fleet.clock.now().toISOString() } as AgentEvent;
    this.events.push(event);
    return event;
  }

  markSafe(): void {
    this.logSafe = true;
    for (const w of this.safeWaiters.splice(0)) w();
  }

  /** Waits (on the fleet's clock) until the log is safe or `ms` passed. */
  waitSafe(ms: number): Promise<void> {
    if (this.logSafe) return Promise.resolve();
    const timer = new AbortController();
    return new Promise((resolve) => {
      this.safeWaiters.push(() => {
        timer.abort();
        resolve();
      });
      this.fleet.clock.sleep(ms, AbortSignal.any([timer.signal, this.fleet.stopped])).then(resolve, () => resolve());
    });
  }
}

export class FakeHost {
  bootCount = 1;
  reachable = true;
  servicingIdle = true;
  pendingReboot: boolean;
  readonly installed = new Map<string, InstalledState>();
  readonly installCounts = new Map<string, number>();
  readonly attempts = new Map<string, number>();
  readonly launches: CycleRequest[] = [];
  agent: FakeAgent | null = null;
  /** Logs of finished cycles by cycle number (the pipe / file the agent leaves). */
  readonly logs = new Map<number, AgentEvent[]>();
  rebooting = false;
  /** Tests flip this to bring a lost host back. */
  comesBack: boolean;

  constructor(
    readonly spec: FakeHostSpec,
    private readonly fleet: FakeFleet,
  ) {
    this.pendingReboot = spec.pendingReboot ?? false;
    this.comesBack = spec.comesBack !== false;
  }

  get bootId(): string {
    return `${this.spec.name}-boot-${this.bootCount}`;
  }

  record(u: FakeUpdateSpec): UpdateRecord {
    return {
      updateId: u.id,
      revisionNumber: 1,
      title: u.title ?? `Update ${u.kb}`,
      kbs: [u.kb],
      msrcSeverity: 'Important',
      classification: u.classification ?? 'Security Updates',
      products: ['Windows Server 2022'],
      categories: [],
      isDownloaded: false,
      isHidden: false,
      isMandatory: false,
      browseOnly: false,
      type: 'software',
      rebootBehavior: (u.rebootBehavior ?? 'always') === 'always' ? 'always' : 'never',
      impact: 'normal',
      eulaAccepted: true,
      supersededUpdateIds: [],
      maxDownloadSize: 1000,
      lastDeploymentChangeTime: '2026-01-01T00:00:00Z',
      supportUrl: null,
      downloadUrls: [],
    };
  }

  /** A reboot is pending when one was at start or an install awaits its reboot (as Windows reports it). */
  rebootPending(): boolean {
    return this.pendingReboot || [...this.installed.values()].some((st) => !st.committed);
  }

  applicable(): FakeUpdateSpec[] {
    return this.spec.updates.filter(
      (u) => !this.installed.has(u.id) && (u.requires ?? []).every((r) => this.installed.get(r)?.committed === true),
    );
  }

  reboot(): void {
    if (this.rebooting) return;
    this.rebooting = true;
    this.reachable = false;
    this.fleet.timer(this.spec.rebootMs ?? 30, () => {
      for (const [id, st] of [...this.installed]) {
        const spec = this.spec.updates.find((u) => u.id === id);
        if (spec?.sticks === false) this.installed.delete(id);
        else if (!st.committed) this.installed.set(id, { committed: true });
      }
      this.pendingReboot = false;
      this.bootCount++;
      this.rebooting = false;
      this.reachable = this.comesBack;
      this.fleet.busyEnd(this.spec.name);
    });
  }
}

export class FakeFleet implements Transport {
  readonly name = 'fake';
  /** Agents whose own reboot did not happen (agentRebootFails). */
  agentRebootFailures = 0;
  /** Reboots the engine asked for through the transport, by host. */
  readonly engineReboots = new Map<string, number>();
  readonly hosts = new Map<string, FakeHost>();
  /** Simulated time: the test's ManualClock (engine-helpers.ts), or real time for the kill -9 test. */
  clock: Clock = systemClock;
  /** Aborted by close(): every pending simulated duration ends. */
  private readonly stopAll = new AbortController();
  /** Agent POSTs on the wire: simulated time stands still while one is (a ManualClock's `busy`). */
  inFlight = 0;
  private nextPid = 1000;
  private readonly busy = new Set<string>();
  maxBusy = 0;
  closed = false;

  constructor(specs: readonly FakeHostSpec[]) {
    for (const s of specs) this.hosts.set(s.name, new FakeHost(s, this));
  }

  host(name: string): FakeHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no fake host ${name}`);
    return h;
  }

  get stopped(): AbortSignal {
    return this.stopAll.signal;
  }

  /** Runs `fn` after `ms` of the fleet's clock, unless the fleet is closed first. */
  timer(ms: number, fn: () => void): void {
    this.clock.sleep(ms, this.stopAll.signal).then(fn, () => undefined);
  }

  busyStart(name: string): void {
    this.busy.add(name);
    this.maxBusy = Math.max(this.maxBusy, this.busy.size);
  }

  busyEnd(name: string): void {
    this.busy.delete(name);
  }

  /** Total installs of one update on one host (2+ means installed twice). */
  installs(host: string, updateId: string): number {
    return this.host(host).installCounts.get(updateId) ?? 0;
  }

  async resolveTargets(names: readonly string[]): Promise<readonly string[]> {
    const unknown = names.filter((n) => !this.hosts.has(n));
    if (unknown.length) throw usageError('TARGET_UNKNOWN', `Unknown host(s): ${unknown.join(', ')}`);
    return names;
  }

  async listTargets(): Promise<readonly string[]> {
    return [...this.hosts.keys()];
  }

  /** Calls made per host and operation (what a test of "no waiting" counts). */
  readonly calls = new Map<string, number>();
  /** Calls that threw the host's `throws` error, per host and operation. */
  readonly thrown = new Map<string, number>();

  private count(name: string, op: NonNullable<FakeHostSpec['throws']>['op']): void {
    const key = `${name}:${op}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    const t = this.host(name).spec.throws;
    if (t && t.op === op && this.host(name).bootCount >= (t.fromBoot ?? 1)) {
      this.thrown.set(key, (this.thrown.get(key) ?? 0) + 1);
      throw t.error;
    }
  }

  async prepare(name: string, _input?: unknown, signal?: AbortSignal): Promise<{ readonly offlineCabPath?: string }> {
    this.count(name, 'prepare');
    const ms = this.host(name).spec.slowPrepareMs;
    if (ms) await this.clock.sleep(ms, signal ? AbortSignal.any([signal, this.stopped]) : this.stopped);
    return {};
  }

  async launch(name: string, request: CycleRequest): Promise<LaunchResult> {
    this.count(name, 'launch');
    const host = this.host(name);
    if (!host.reachable) throw new TransportError('unreachable', name, `${name} is not reachable`);
    if (host.spec.refuseLaunch) throw new LaunchRefusedError(name, '0x80070005', 'Access is denied.');
    host.launches.push(request);
    const agent = new FakeAgent(this.nextPid++, request, this);
    host.agent = agent;
    this.busyStart(name);
    void this.runAgent(host, agent);
    if (host.spec.slowLaunchMs) await this.sleep(host.spec.slowLaunchMs);
    return { taskId: `task-${agent.pid}`, pid: agent.pid };
  }

  async probe(name: string): Promise<HostStatus> {
    this.count(name, 'probe');
    const h = this.host(name);
    return {
      reachable: h.reachable,
      bootId: h.reachable ? h.bootId : null,
      servicingIdle: h.reachable && h.servicingIdle,
    };
  }

  async fetchLog(name: string, request: CycleRequest): Promise<readonly AgentEvent[] | null> {
    this.count(name, 'fetchLog');
    const h = this.host(name);
    const log = h.logs.get(request.cycle);
    if (!log) return null;
    if (h.agent && h.agent.request.cycle === request.cycle) h.agent.markSafe();
    return [...log];
  }

  async isRunning(name: string, launch: LaunchResult): Promise<boolean> {
    this.count(name, 'isRunning');
    const a = this.host(name).agent;
    return a !== null && a.pid === launch.pid && a.running;
  }

  async stop(name: string, launch: LaunchResult): Promise<void> {
    const a = this.host(name).agent;
    if (a && a.pid === launch.pid) a.abort();
  }

  async reboot(name: string): Promise<void> {
    this.count(name, 'reboot');
    const h = this.host(name);
    this.busyStart(name);
    this.engineReboots.set(name, (this.engineReboots.get(name) ?? 0) + 1);
    h.reboot();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopAll.abort();
  }

  /** Stops every simulated agent and timer (end of a test). */
  async shutdown(): Promise<void> {
    for (const h of this.hosts.values()) h.agent?.abort();
    await this.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timer(ms, resolve));
  }

  /** `afterSafe`: an event the agent still sends once its log is safe (a failed reboot's warning). */
  private async post(
    host: FakeHost,
    agent: FakeAgent,
    events: readonly AgentEvent[],
    afterSafe = false,
  ): Promise<void> {
    const cb = agent.request.callback;
    if (!cb || host.spec.streamBroken || (agent.logSafe && !afterSafe)) return;
    this.inFlight++;
    try {
      const res = await fetch(cb.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${cb.token}`, 'content-type': 'application/x-ndjson' },
        body: events.map((e) => JSON.stringify(e)).join('\n') + '\n',
      });
      if (res.status === 200) {
        const body = (await res.json()) as { ackSeq: number };
        agent.acked = Math.max(agent.acked, body.ackSeq);
        if (agent.finishedSeq > 0 && agent.acked >= agent.finishedSeq) agent.markSafe();
      } else {
        await res.body?.cancel();
      }
    } catch (error) {
      // The connector is gone (killed or closed): the agent relies on its log hand-over, as the real one does.
      agent.streamErrors.push((error as Error).message);
    } finally {
      this.inFlight--;
    }
  }

  /** Streams in the background like the real agent's HTTP sink: what piles up during a POST goes in the next one. */
  private flush(host: FakeHost, agent: FakeAgent): Promise<void> {
    agent.flushing ??= (async () => {
      while (agent.posted < agent.events.length && !agent.logSafe) {
        const batch = agent.events.filter((e) => e.seq > agent.posted);
        agent.posted = batch.at(-1)!.seq;
        await this.post(host, agent, batch);
      }
    })().finally(() => {
      agent.flushing = null;
    });
    return agent.flushing;
  }

  private async emit(host: FakeHost, agent: FakeAgent, body: AgentEventBody): Promise<void> {
    const e = agent.push(body);
    if (!host.spec.chaoticStream) {
      void this.flush(host, agent);
      return;
    }
    if (e.seq % 3 !== 0) return;
    const batch = agent.events.slice(-3).reverse();
    await this.post(host, agent, batch);
    await this.post(host, agent, batch);
  }

  /** The simulated `patchline agent cycle`. */
  private async runAgent(host: FakeHost, agent: FakeAgent): Promise<void> {
    const r = agent.request;
    const stepMs = host.spec.stepMs ?? 5;
    let outcome: CycleOutcome;
    let rebootRequired = false;
    let installedAny = false;
    await this.emit(host, agent, {
      kind: 'cycle-started',
      runId: r.runId,
      host: r.host,
      cycle: r.cycle,
      pid: agent.pid,
      provider: 'fake',
      agentVersion: '0.0.0-test',
    });
    await this.emit(host, agent, {
      kind: 'preflight',
      rebootRequired: host.rebootPending(),
      installerBusy: false,
      lastBootUpTime: host.bootId,
    });
    if (host.rebootPending()) {
      outcome = 'reboot-pending';
      rebootRequired = true;
    } else {
      const loops: string[] = [];
      let failures = 0;
      for (let pass = 1; pass <= 3; pass++) {
        if (agent.aborted) break;
        const found = host.applicable().map((u) => host.record(u));
        const selection = selectUpdates(found, r.filters, this.clock.now());
        const selectedAll = selection.selected.map((u) => u.updateId).filter((id) => !r.exclude.includes(id));
        const looping = selectedAll.filter((id) => r.installedEarlier.includes(id));
        const selected = selectedAll.filter((id) => !looping.includes(id));
        await this.emit(host, agent, {
          kind: 'scan-result',
          pass,
          found,
          selected: selectedAll,
          skipped: selection.skipped.map((s) => ({ updateId: s.update.updateId, reason: s.reason })),
        });
        if (looping.length) {
          loops.push(...looping);
          await this.emit(host, agent, { kind: 'loop-detected', updateIds: looping });
        }
        if (r.mode === 'scan' || selected.length === 0) break;
        let installedThisPass = false;
        let failedThisPass = false;
        for (const id of selected) {
          if (agent.aborted) break;
          const spec = host.spec.updates.find((u) => u.id === id)!;
          await this.sleep(stepMs);
          await this.emit(host, agent, { kind: 'progress', phase: 'download', updateId: id, percent: 100 });
          await this.emit(host, agent, {
            kind: 'update-result',
            phase: 'download',
            updateId: id,
            resultCode: 'succeeded',
            hresult: null,
            rebootRequired: false,
          });
          if (r.mode === 'download') continue;
          // Like WUA, an abort takes effect between updates: the one in flight finishes.
          await this.sleep(stepMs);
          if (host.spec.installUntilStoppedInCycle === r.cycle) await agent.untilStopped();
          const n = (host.attempts.get(id) ?? 0) + 1;
          host.attempts.set(id, n);
          if (n <= (spec.failTimes ?? 0)) {
            failures++;
            failedThisPass = true;
            await this.emit(host, agent, {
              kind: 'update-result',
              phase: 'install',
              updateId: id,
              resultCode: 'failed',
              hresult: spec.hresult ?? '0x80242016',
              rebootRequired: false,
            });
            continue;
          }
          const needsReboot = (spec.rebootBehavior ?? 'always') === 'always';
          host.installed.set(id, { committed: !needsReboot });
          host.installCounts.set(id, (host.installCounts.get(id) ?? 0) + 1);
          installedAny = true;
          installedThisPass = true;
          if (needsReboot) rebootRequired = true;
          await this.emit(host, agent, {
            kind: 'update-result',
            phase: 'install',
            updateId: id,
            resultCode: 'succeeded',
            hresult: null,
            rebootRequired: needsReboot,
          });
        }
        if (r.mode === 'download' || rebootRequired || !installedThisPass || failedThisPass) break;
      }
      if (agent.aborted) outcome = 'aborted';
      else if (loops.length) outcome = 'loop-detected';
      else if (rebootRequired) outcome = 'reboot-required';
      else if (failures > 0) outcome = 'failed';
      else outcome = 'done';
    }
    if (agent.aborted) outcome = 'aborted';
    const willReboot =
      outcome !== 'aborted' && r.reboot !== 'never' && (rebootRequired || (r.reboot === 'always' && installedAny));
    const fin = agent.push({
      kind: 'cycle-finished',
      outcome,
      rebootRequired,
      willReboot,
      message: null,
      hresult: null,
    });
    agent.finishedSeq = fin.seq;
    // The host's work is over once the agent wrote its last word without a reboot to come; what
    // remains is handing over the log and exiting.
    if (!willReboot) this.busyEnd(host.spec.name);
    host.logs.set(r.cycle, [...agent.events]);
    // Send what is left, then resend everything not yet acknowledged (a lost batch is resent).
    if (!host.spec.chaoticStream) await this.flush(host, agent);
    await this.post(
      host,
      agent,
      agent.events.filter((e) => e.seq > agent.acked),
    );
    await agent.waitSafe(r.logHandoverTimeoutSeconds * 1000);
    const fails = host.spec.agentRebootFails;
    if (willReboot && !this.closed && fails?.cycle === r.cycle) {
      // Like runAgentCycle: `rebooting`, the reboot call fails, the warning is delivered, then the agent exits.
      this.agentRebootFailures++;
      await this.emit(host, agent, { kind: 'rebooting' });
      if (fails.how === 'warning') {
        agent.push({
          kind: 'warning',
          message: 'the reboot failed: the lab host did not take the reboot request: fetch failed',
          hresult: null,
        });
        // The log is already safe (flush stops there): the agent still posts its last words.
        await this.post(
          host,
          agent,
          agent.events.filter((e) => e.seq > agent.posted),
          true,
        );
      }
      agent.running = false;
      return;
    }
    agent.running = false;
    if (willReboot && !this.closed) {
      await this.emit(host, agent, { kind: 'rebooting' });
      if (host.spec.resendsRebooting) {
        const last = agent.events.filter((e) => e.kind === 'rebooting');
        await Promise.all([this.post(host, agent, last, true), this.post(host, agent, last, true)]);
      }
      host.reboot();
    }
  }
}
