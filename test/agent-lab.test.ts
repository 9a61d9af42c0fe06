/**
 * runCycle against the lab's simulated provider (src/lab/simulated-provider.ts) over in-memory
 * streams, with a scenario file: the same agent code that ships, against the same protocol the
 * PowerShell provider speaks, on a virtual host with a real servicing chain and faults.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/agent/clock.ts';
import { runCycle } from '../src/agent/cycle.ts';
import type { AgentEvent, CycleRequest } from '../src/domain/agent-log.ts';
import { createPayloadStore, type PayloadStore } from '../src/lab/payloads.ts';
import { loadScenario, type Scenario } from '../src/lab/scenario.ts';
import { serveProvider } from '../src/lab/simulated-provider.ts';
import { inMemoryChannel } from '../src/wua/client.ts';

const SCENARIO = `
timeScale: 0.0001
payloadScale: 0.01
catalog:
  - { key: ssu, kb: 5044444, title: Servicing Stack Update, classification: Security Updates, severity: Critical, products: [WS2022], released: 2026-11-11 }
  - { key: cu-old, kb: 5043000, title: CU October, classification: Security Updates, products: [WS2022], released: 2026-10-08, reboot: always }
  - { key: cu, kb: 5044445, title: CU November, classification: Security Updates, products: [WS2022], released: 2026-11-11, reboot: always, requires: [ssu], supersedes: [cu-old] }
  - { key: drv, title: Some driver, classification: Drivers, type: driver, products: [WS2022], released: 2026-10-02 }
  - { key: tool, kb: 890830, title: MSRT, classification: Update Rollups, impact: exclusive, products: [WS2022], released: 2026-11-11 }
hosts:
  - { name: web01, product: WS2022, installed: [cu-old] }
  - name: web02
    product: WS2022
    installed: [cu-old]
    faults:
      - { pendingRebootAtStart: true }
`;

function request(host: string, overrides: Partial<CycleRequest> = {}): CycleRequest {
  return {
    runId: 'r-lab',
    host,
    cycle: 1,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 60,
    logHandoverTimeoutSeconds: 1,
    ...overrides,
  };
}

describe('runCycle against the lab provider', () => {
  let dir = '';
  let scenario: Scenario;
  let payloads: PayloadStore;
  let upstream: Server;
  let upstreamUrl = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'patchline-agent-lab-'));
    const file = join(dir, 'scenario.yaml');
    await writeFile(file, SCENARIO);
    scenario = await loadScenario(file);
    payloads = createPayloadStore(scenario);
    upstream = createServer((req, res) => {
      if (!payloads.handle(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(async () => {
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const labCycle = async (host: string, req: CycleRequest) => {
    const events: AgentEvent[] = [];
    const summary = await runCycle(req, {
      openProvider: () =>
        inMemoryChannel((input, output) =>
          serveProvider(input, output, {
            scenario,
            hostName: host,
            hostDir: join(dir, 'hosts', host),
            upstreamUrl,
            payloads,
          }),
        ),
      sinks: [{ write: (e) => events.push(e) }],
      clock: systemClock,
      signal: AbortSignal.timeout(30_000),
    });
    return { summary, events };
  };
  const keyOf = (id: string): string => scenario.byId.get(id)?.key ?? id;

  it('installs the exclusive tool alone, then the SSU, then the CU it unlocks — one cycle, then reboot', async () => {
    const { summary, events } = await labCycle('web01', request('web01'));
    assert.equal(summary.outcome, 'reboot-required', summary.message ?? '');
    assert.equal(summary.willReboot, true);
    const installs = events.flatMap((e) =>
      e.kind === 'update-result' && e.phase === 'install' ? [`${keyOf(e.updateId)}:${e.resultCode}`] : [],
    );
    assert.deepEqual(installs, ['tool:succeeded', 'ssu:succeeded', 'cu:succeeded']);
    const firstScan = events.find((e) => e.kind === 'scan-result');
    assert.ok(firstScan?.kind === 'scan-result');
    assert.ok(firstScan.skipped.some((s) => keyOf(s.updateId) === 'drv' && s.reason === 'driver'));
    assert.equal(events.at(-1)?.kind, 'cycle-finished');
  });

  it('stops before installing on a host with a reboot pending', async () => {
    const { summary, events } = await labCycle('web02', request('web02'));
    assert.equal(summary.outcome, 'reboot-pending');
    assert.ok(!events.some((e) => e.kind === 'scan-result'));
  });
});
