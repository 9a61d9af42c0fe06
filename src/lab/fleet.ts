/**
 * The lab fleet: one enrolled agent service per scenario host, talking to a Patchline server over
 * real HTTP — the same AgentService code a Windows host runs, wired in-process to the simulated WUA
 * provider (serveProvider over in-memory streams). A virtual host reboots as in `patchline run
 * --lab`: its agent is killed, the reboot takes the scenario's (scaled) time, the boot completes
 * WUA's pending work (state.json), the boot id changes, and a new agent starts — unless the
 * scenario says this reboot never comes back. `shutdown(name)` models a shutdown event (the
 * agent's install-at-shutdown hook runs, then the host stays down).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../agent/clock.ts';
import { AgentHttp } from '../agent/service/http.ts';
import { enrollAgent } from '../agent/service/enroll.ts';
import { AgentService, type HostIo } from '../agent/service/service.ts';
import { AgentState } from '../agent/service/state.ts';
import { verifyCabSignature } from '../catalog/authenticode/verify.ts';
import { defaultRoots } from '../catalog/roots/default-roots.ts';
import { inMemoryChannel } from '../wua/client.ts';
import { initHostDir, readBootFile, writeBootFile, completeReboot } from './host-state.ts';
import { LAB_ROOT_SUFFIX } from './offline-scan.ts';
import type { PayloadStore } from './payloads.ts';
import type { Scenario, ScenarioHost } from './scenario.ts';
import { serveProvider } from './simulated-provider.ts';

const LAB_AGENT_VERSION = '0.1.0-lab';

export interface LabFleetOptions {
  readonly scenario: Scenario;
  /** `DIR/hosts/<name>` holds each host's WUA state; `…/agent` its agent's state directory. */
  readonly dir: string;
  readonly serverUrl: string;
  /** Certificate fingerprint the agents pin (null: plain HTTP on loopback). */
  readonly enrollToken: string;
  /** The lab's fake upstream serving the payloads. */
  readonly upstreamUrl: string;
  readonly payloads: PayloadStore;
  /** The lab root the lab catalog is signed with: trusted by these agents only. */
  readonly labRootPem: string;
  readonly log?: (message: string) => void;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly checkinWaitSeconds?: number;
  /** Only these hosts (default: every scenario host). */
  readonly hosts?: readonly string[];
}

export interface LabFleetHost {
  readonly name: string;
  readonly hostDir: string;
  readonly state: AgentState;
  /** The running agent; null while the host reboots or is down. */
  service: AgentService | null;
  status: 'up' | 'rebooting' | 'down';
  reboots: number;
}

export interface LabFleet {
  readonly hosts: ReadonlyMap<string, LabFleetHost>;
  /** A shutdown event on a host: install-at-shutdown runs, then the host is down. */
  shutdown(name: string): Promise<void>;
  /** Stops every agent (idempotent). */
  close(): Promise<void>;
}

/** How long close() waits for agents and reboots to wind down (real time). */
const CLOSE_WAIT_MS = 20_000;

interface Running {
  readonly kill: AbortController;
  readonly done: Promise<void>;
}

export async function startLabFleet(options: LabFleetOptions): Promise<LabFleet> {
  const log = options.log ?? (() => undefined);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const hosts = new Map<string, LabFleetHost>();
  const running = new Map<string, Running>();
  const closing = new AbortController();
  let closed = false;
  /** Work that outlives its caller (a stopped agent unwinding, a reboot under way): close() waits for it, so nothing writes into the lab after. */
  const inflight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>): void => {
    inflight.add(p);
    const settled = (): void => void inflight.delete(p);
    p.then(settled, settled);
  };
  const roots = [...defaultRoots(), options.labRootPem];

  const hostIo = (spec: ScenarioHost, h: LabFleetHost, kill: AbortSignal): HostIo => ({
    openProvider: () =>
      inMemoryChannel((input, output) =>
        serveProvider(input, output, {
          scenario: options.scenario,
          hostName: spec.name,
          hostDir: h.hostDir,
          upstreamUrl: options.upstreamUrl,
          payloads: options.payloads,
          signal: kill,
          clock,
        }),
      ),
    bootId: async () => (await readBootFile(h.hostDir))?.bootId ?? null,
    reboot: async () => reboot(spec, h),
    verifyCab: async (path) => {
      await verifyCabSignature(path, { roots });
      // The simulated WUA trusts the lab root when it lies beside the cab (offline-scan.ts).
      await writeFile(`${path.replace(/\.download$/, '')}${LAB_ROOT_SUFFIX}`, options.labRootPem);
    },
  });

  async function boot(spec: ScenarioHost, h: LabFleetHost): Promise<void> {
    if (closed) return;
    await initHostDir(h.hostDir, spec, clock.now(), options.scenario.timeScale);
    await h.state.init();
    let enrollment = await h.state.enrollment();
    if (!enrollment) {
      enrollment = await enrollAgent({
        serverUrl: options.serverUrl,
        token: options.enrollToken,
        hostName: spec.name,
        agentVersion: LAB_AGENT_VERSION,
        state: h.state,
        now: () => clock.now(),
        signal: AbortSignal.timeout(30_000),
      });
    }
    if (closed) return; // closed while booting: start nothing that close() would not stop
    // The lab's server may listen on another port when the lab is resumed: its URL is the one given now.
    const http = new AgentHttp({
      serverUrl: options.serverUrl,
      fingerprint: enrollment.fingerprint,
      credential: enrollment.credential,
    });
    const kill = new AbortController();
    const service = new AgentService({
      state: h.state,
      http,
      host: hostIo(spec, h, kill.signal),
      clock,
      random,
      agentVersion: LAB_AGENT_VERSION,
      hostName: spec.name,
      log: (m) => log(`${spec.name}: ${m}`),
      ...(options.checkinWaitSeconds === undefined ? {} : { checkinWaitSeconds: options.checkinWaitSeconds }),
    });
    h.service = service;
    h.status = 'up';
    const done = service
      .run(kill.signal)
      .catch((error: unknown) => log(`${spec.name}: agent stopped: ${(error as Error).stack ?? String(error)}`))
      .finally(() => http.close());
    running.set(spec.name, { kill, done });
  }

  async function stopAgent(name: string): Promise<void> {
    const r = running.get(name);
    if (!r) return;
    running.delete(name);
    r.kill.abort(new Error('host going down'));
    track(r.done);
  }

  async function reboot(spec: ScenarioHost, h: LabFleetHost): Promise<void> {
    if (h.status !== 'up') return;
    h.status = 'rebooting';
    h.service = null;
    h.reboots++;
    log(`${spec.name}: rebooting (${h.reboots})`);
    await stopAgent(spec.name);
    if (spec.faults.neverReturnAfterReboot === h.reboots) {
      h.status = 'down';
      log(`${spec.name}: did not come back from reboot ${h.reboots} (scenario fault)`);
      return;
    }
    // The reboot takes its time on the fleet's clock (a test's manual clock moves it).
    const back = clock
      .sleep(Math.round(spec.rebootSeconds * 1_000 * options.scenario.timeScale), closing.signal)
      .then(
        async () => {
          const now = clock.now();
          await completeReboot(h.hostDir, now);
          const previous = await readBootFile(h.hostDir);
          await writeBootFile(h.hostDir, {
            ...previous,
            bootId: new Date(Math.max(now.getTime(), Date.parse(previous?.bootId ?? '') + 1 || 0)).toISOString(),
            bootCount: (previous?.bootCount ?? 1) + 1,
          });
          await boot(spec, h);
        },
        () => undefined,
      )
      .catch((error: unknown) => log(`${spec.name}: boot failed: ${(error as Error).message}`));
    track(back);
  }

  const wanted = options.hosts ? new Set(options.hosts.map((n) => n.toLowerCase())) : null;
  for (const spec of options.scenario.hosts) {
    if (wanted && !wanted.has(spec.name.toLowerCase())) continue;
    const hostDir = join(options.dir, 'hosts', spec.name);
    hosts.set(spec.name, {
      name: spec.name,
      hostDir,
      state: new AgentState(join(hostDir, 'agent')),
      service: null,
      status: 'down',
      reboots: 0,
    });
  }
  await Promise.all([...hosts.values()].map((h) => boot(options.scenario.hostByName.get(h.name)!, h)));

  return {
    hosts,
    async shutdown(name) {
      const h = hosts.get(name);
      if (!h?.service || h.status !== 'up') return;
      await h.service.onShutdown(AbortSignal.timeout(10 * 60_000));
      h.status = 'down';
      h.service = null;
      await stopAgent(name);
    },
    async close() {
      closed = true;
      closing.abort();
      const all = [...running.values()];
      running.clear();
      for (const r of all) r.kill.abort(new Error('lab fleet closed'));
      // A reboot under way may boot its host after the abort above: wait for it, then stop what it
      // started. Bounded (in real time: a test's manual clock may stand still), and said when it runs out.
      const settled = (async () => {
        while (inflight.size > 0) await Promise.allSettled([...inflight]);
        const late = [...running.values()];
        running.clear();
        for (const r of late) r.kill.abort(new Error('lab fleet closed'));
        await Promise.all([...all, ...late].map((r) => r.done));
      })();
      let timer: NodeJS.Timeout | undefined;
      const outOfTime = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), CLOSE_WAIT_MS);
        timer.unref();
      });
      if ((await Promise.race([settled, outOfTime])) === 'timeout')
        log(
          `lab fleet: ${inflight.size + running.size} agent(s) or reboot(s) still stopping after ${CLOSE_WAIT_MS / 1000} s; not waiting longer`,
        );
      clearTimeout(timer);
    },
  };
}
