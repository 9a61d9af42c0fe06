/**
 * The transport contract: one suite every Transport passes (Hono's `common.case.test.ts` pattern),
 * so the engine can treat the lab, SSH, Windows and agent transports — and the engine tests' double
 * — alike. It checks what the engine relies on: names resolve or are refused as usage errors; a
 * probe answers for a host that is down instead of throwing; failures are classified (a down host
 * is `unreachable`, a refused launch carries the scheduler's HRESULT); a cycle launched at once
 * runs an agent whose whole log can be fetched afterwards, gap-free from `cycle-started` to
 * `cycle-finished`; stopping a finished agent is harmless; a reboot brings a new boot id.
 *
 * How a new transport joins: add a `<name>.contract.test.ts` beside it that calls
 *
 *     runTransportContract('ssh', async () => ({ transport, up: 'web01', down: 'lost01', refusing: 'locked01',
 *       eventually: pollingEventually(30_000, 50), close: async () => { ... } }));
 *
 * where the fixture names a host that is up, optionally one that is down and one whose task
 * scheduler refuses launches, and `eventually` waits (bounded) until `check` resolves true — by
 * polling a real system, or by moving a ManualClock for a simulated one. A transport that cannot
 * offer a fixture part (no way to take a host down) leaves it out: those checks are skipped with
 * the reason, visibly. Every call gets the fixture's `signal` or a short timeout of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';
import { EXIT, PatchlineError } from '../domain/errors.ts';
import { LaunchRefusedError, transportFailureOf, type Transport } from './transport.ts';

export interface TransportFixture {
  readonly transport: Transport;
  /** A host that answers and has nothing pending (a scan cycle on it ends `done`). */
  readonly up: string;
  /** A host that does not answer (down for the whole suite). */
  readonly down?: string;
  /** A host whose task scheduler refuses to start the agent. */
  readonly refusing?: string;
  /** Waits until `check` resolves true; fails naming `what` after the fixture's own bound. */
  eventually(what: string, check: () => Promise<boolean>): Promise<void>;
  close(): Promise<void>;
}

/**
 * The lab scenario behind the lab-backed fixtures (lab daemon, SSH lab): web01 is up, lost01 goes
 * down for good after its first reboot, locked01's task scheduler refuses every launch.
 */
export const LAB_CONTRACT_SCENARIO = `
timeScale: 0.05
catalog:
  - key: cu-2026-11
    kb: 5044445
    title: 2026-11 Cumulative Update for Windows Server 2022
    classification: Security Updates
    products: [Windows Server 2022]
    reboot: always
    released: 2026-11-11
hosts:
  - name: web01
    product: Windows Server 2022
    rebootSeconds: 2
  - name: lost01
    product: Windows Server 2022
    rebootSeconds: 2
    faults:
      - { neverReturnAfterReboot: 1 }
  - name: locked01
    product: Windows Server 2022
    faults:
      - { launchFails: "0x80070005" }
`;

/** An `eventually` that polls a real system every `everyMs` and gives up after `withinMs`. */
export function pollingEventually(
  withinMs: number,
  everyMs: number,
): (what: string, check: () => Promise<boolean>) => Promise<void> {
  return async (what, check) => {
    const deadline = Date.now() + withinMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  };
}

/** A scan-only cycle with no callback: the agent leaves its log to be fetched, as after a lost stream. */
export function contractRequest(host: string, cycle: number, runId = 'contract-run'): CycleRequest {
  return {
    runId,
    host,
    cycle,
    mode: 'scan',
    reboot: 'never',
    filters: {},
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 5,
    logHandoverTimeoutSeconds: 0,
  };
}

/** Bound on a single call in the suite (launch included). */
const CALL_TIMEOUT_MS = 60_000;

const signal = (): AbortSignal => AbortSignal.timeout(CALL_TIMEOUT_MS);

/**
 * Registers the contract suite for one transport.
 *
 * @example runTransportContract('lab', makeLabFixture)
 */
export function runTransportContract(name: string, makeFixture: () => Promise<TransportFixture>): void {
  describe(`transport contract: ${name}`, () => {
    let f: TransportFixture;
    before(async () => {
      f = await makeFixture();
    });
    after(async () => {
      await f?.close();
    });

    it('lists its targets and resolves known names; unknown names are a usage error naming them', async () => {
      const listed = await f.transport.listTargets();
      assert.ok(listed.includes(f.up), `${f.up} listed`);
      assert.deepEqual([...(await f.transport.resolveTargets([f.up]))], [f.up]);
      await assert.rejects(f.transport.resolveTargets([f.up, 'no-such-host-xq']), (error: unknown) => {
        assert.ok(error instanceof PatchlineError, String(error));
        assert.equal(error.exitCode, EXIT.USAGE);
        assert.match(error.message, /no-such-host-xq/);
        return true;
      });
    });

    it('probes a host that is up: reachable, with a boot id that stays the same while it does not reboot', async () => {
      const first = await f.transport.probe(f.up, signal());
      assert.equal(first.reachable, true);
      assert.equal(typeof first.bootId, 'string');
      assert.ok(first.bootId);
      assert.equal(typeof first.servicingIdle, 'boolean');
      const second = await f.transport.probe(f.up, signal());
      assert.equal(second.bootId, first.bootId);
    });

    it('probes a host that is down without throwing: not reachable, no boot id', async (t) => {
      if (!f.down) return t.skip('the fixture offers no host that is down');
      const status = await f.transport.probe(f.down, signal());
      assert.deepEqual({ reachable: status.reachable, bootId: status.bootId }, { reachable: false, bootId: null });
    });

    it('a launch on a host that is down fails as unreachable (the engine waits for it)', async (t) => {
      if (!f.down) return t.skip('the fixture offers no host that is down');
      await assert.rejects(f.transport.launch(f.down, contractRequest(f.down, 1), signal()), (error: unknown) => {
        assert.equal(transportFailureOf(error), 'unreachable', `classified unreachable: ${String(error)}`);
        return true;
      });
    });

    it("a launch the task scheduler refuses carries the scheduler's HRESULT", async (t) => {
      if (!f.refusing) return t.skip('the fixture offers no host whose scheduler refuses');
      await assert.rejects(
        f.transport.launch(f.refusing, contractRequest(f.refusing, 1), signal()),
        (error: unknown) => {
          assert.ok(error instanceof LaunchRefusedError, String(error));
          assert.match(error.hresult, /^0x[0-9a-f]{8}$/i);
          assert.equal(transportFailureOf(error), 'refused');
          return true;
        },
      );
    });

    it('prepare with nothing to place is idempotent', async () => {
      assert.deepEqual(await f.transport.prepare(f.up, {}, signal()), {});
      assert.deepEqual(await f.transport.prepare(f.up, {}, signal()), {});
    });

    it('a launched cycle runs an agent that ends; its whole log is fetched afterwards, in order, without gaps', async () => {
      const request = contractRequest(f.up, 1, `contract-${Date.now().toString(36)}`);
      assert.equal(await f.transport.fetchLog(f.up, request, signal()), null, 'no log before the cycle ran');
      const launch = await f.transport.launch(f.up, request, signal());
      assert.equal(typeof launch.taskId, 'string');
      assert.ok(Number.isInteger(launch.pid) && launch.pid > 0, `pid ${launch.pid}`);
      await f.eventually('the agent to exit', async () => !(await f.transport.isRunning(f.up, launch, signal())));
      let log: readonly AgentEvent[] | null = null;
      await f.eventually('the agent log to be there', async () => {
        log = await f.transport.fetchLog(f.up, request, signal());
        return log !== null && log.some((e) => e.kind === 'cycle-finished');
      });
      const events = log as unknown as readonly AgentEvent[];
      assert.equal(events[0]?.kind, 'cycle-started');
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
        'seq 1..n',
      );
      const finished = events.find((e) => e.kind === 'cycle-finished');
      assert.ok(
        finished && finished.kind === 'cycle-finished' && finished.willReboot === false,
        'a scan with --reboot never does not reboot',
      );
      // Stopping an agent that has ended is harmless (the engine may stop late).
      await f.transport.stop(f.up, launch);
      assert.equal(await f.transport.isRunning(f.up, launch, signal()), false);
    });

    it('a reboot brings the host back in a new boot', async () => {
      const before = await f.transport.probe(f.up, signal());
      await f.transport.reboot(f.up);
      await f.eventually('the host to come back in a new boot', async () => {
        const now = await f.transport.probe(f.up, signal());
        return now.reachable && now.bootId !== null && now.bootId !== before.bootId;
      });
    });
  });
}
