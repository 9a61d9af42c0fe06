/**
 * A real launch through the lab daemon's task scheduler, in both modes: the real agent
 * (`patchline agent cycle`, as a process from the bundle — or in the daemon's process) drives the
 * real lab provider, streams its events to a callback server of ours on 127.0.0.1, and reboots
 * its host through the daemon once we acknowledged the log; the host comes back with a new boot
 * id and the update's reboot done. A second launch is stopped mid-install and reports `aborted`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentEvent, CycleRequest } from '../domain/agent-log.ts';
import { createLabTransport } from '../transports/lab.ts';
import type { Transport } from '../transports/transport.ts';
import { POWERED_OFF_NOTE, startLabDaemon, type LabDaemon, type LabDaemonMode } from './daemon.ts';

const SCENARIO = `
timeScale: 0.05
catalog:
  - key: cu-2026-11
    kb: 5044445
    title: 2026-11 Cumulative Update for Windows Server 2022
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    reboot: always
    installSeconds: 2
    released: 2026-11-11
  - key: big-2026-11
    kb: 5044446
    title: 2026-11 Slow Update for Windows Server 2019
    classification: Updates
    products: [Windows Server 2019]
    installSeconds: 400
    released: 2026-11-11
hosts:
  - name: web01
    product: Windows Server 2022
    rebootSeconds: 2
  - name: old{01..02}
    product: Windows Server 2019
    rebootSeconds: 2
`;

/** Every wait in this file is bounded by this. */
const WAIT_TIMEOUT_MS = 30_000;

/** A connector's callback endpoint: collects events per token, acknowledges contiguous seqs. */
class CallbackServer {
  readonly events = new Map<string, AgentEvent[]>();
  private server: Server | undefined;
  private waiters: (() => void)[] = [];
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const list = this.events.get(token) ?? [];
        for (const line of body.split('\n')) {
          if (line.trim() === '') continue;
          const event = JSON.parse(line) as AgentEvent;
          if (!list.some((e) => e.seq === event.seq)) list.push(event);
        }
        list.sort((a, b) => a.seq - b.seq);
        this.events.set(token, list);
        let ackSeq = 0;
        while (list[ackSeq]?.seq === ackSeq + 1) ackSeq += 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ackSeq }));
        for (const w of this.waiters.splice(0)) w();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
  }

  /** Waits (bounded) until the cycle with this token finished; returns its events. */
  async finished(token: string): Promise<AgentEvent[]> {
    const deadline = Date.now() + WAIT_TIMEOUT_MS;
    for (;;) {
      const list = this.events.get(token) ?? [];
      if (list.some((e) => e.kind === 'cycle-finished')) return list;
      if (Date.now() > deadline)
        throw new Error(`no cycle-finished for ${token}; got ${list.map((e) => e.kind).join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

function cycleRequest(host: string, runId: string, callback: { url: string; token: string }): CycleRequest {
  return {
    runId,
    host,
    cycle: 1,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 5,
    callback,
    logHandoverTimeoutSeconds: 10,
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const mode of ['process', 'inprocess'] as const satisfies readonly LabDaemonMode[]) {
  describe(`lab daemon launch (${mode})`, () => {
    let dir: string;
    let daemon: LabDaemon;
    let transport: Transport;
    const callback = new CallbackServer();

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `pl-launch-${mode}-`));
      const scenarioPath = join(dir, 'scenario.yaml');
      await writeFile(scenarioPath, SCENARIO);
      await callback.start();
      daemon = await startLabDaemon({ scenarioPath, dir: join(dir, 'lab'), mode, idleShutdownMs: 0 });
      transport = createLabTransport({
        dir: daemon.dir,
        daemon: { connect: async () => ({ url: daemon.url, token: daemon.token }), close: async () => undefined },
      });
    });
    after(async () => {
      await daemon.close();
      await callback.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('runs the agent against the lab provider, streams events, reboots the host through the daemon', async () => {
      const signal = AbortSignal.timeout(WAIT_TIMEOUT_MS);
      const before = await transport.probe('web01', signal);
      const token = `tok-${mode}-1`;
      const launched = await transport.launch(
        'web01',
        cycleRequest('web01', `run-${mode}`, { url: callback.url, token }),
        signal,
      );
      assert.ok(launched.pid > 0);
      assert.match(launched.taskId, /^patchline-run-/);

      const events = await callback.finished(token);
      const started = events.find((e) => e.kind === 'cycle-started');
      assert.equal(started?.kind === 'cycle-started' && started.host, 'web01');
      const installed = events.filter(
        (e) => e.kind === 'update-result' && e.phase === 'install' && e.resultCode === 'succeeded',
      );
      assert.equal(installed.length, 1, `one install result in ${events.map((e) => e.kind).join(', ')}`);
      const finished = events.find((e) => e.kind === 'cycle-finished');
      assert.ok(finished?.kind === 'cycle-finished');
      assert.deepEqual([finished.outcome, finished.willReboot], ['reboot-required', true]);

      // The agent reboots its host once its log is safe; the host comes back with a new boot id.
      const back = await waitFor('web01 rebooted', async () => {
        const s = await transport.probe('web01', AbortSignal.timeout(WAIT_TIMEOUT_MS));
        return s.reachable && s.bootId !== before.bootId ? s : undefined;
      });
      assert.ok(back.bootId);
      const state = JSON.parse(await readFile(join(daemon.hostDir('web01'), 'state.json'), 'utf8')) as {
        installed: Record<string, { rebootDone: boolean }>;
        rebootPending: boolean;
      };
      assert.equal(state.installed['cu-2026-11']?.rebootDone, true);
      assert.equal(state.rebootPending, false);
      assert.equal(await transport.isRunning('web01', launched, signal), false);
    });

    it('stops a running agent: it aborts the install and reports aborted', async () => {
      const signal = AbortSignal.timeout(WAIT_TIMEOUT_MS);
      const token = `tok-${mode}-2`;
      const launched = await transport.launch(
        'old01',
        cycleRequest('old01', `run-${mode}-stop`, { url: callback.url, token }),
        signal,
      );
      await waitFor('download done, install under way', async () =>
        (callback.events.get(token) ?? []).some((e) => e.kind === 'update-result' && e.phase === 'download')
          ? true
          : undefined,
      );
      assert.equal(await transport.isRunning('old01', launched, signal), true);
      await transport.stop('old01', launched);
      const events = await callback.finished(token);
      const finished = events.find((e) => e.kind === 'cycle-finished');
      assert.equal(finished?.kind === 'cycle-finished' && finished.outcome, 'aborted');
      await waitFor('agent ended', async () =>
        (await transport.isRunning('old01', launched, signal)) ? undefined : true,
      );
    });

    it('a reboot kills everything the host runs (agent and provider) and the host comes back', async () => {
      const signal = AbortSignal.timeout(WAIT_TIMEOUT_MS);
      const token = `tok-${mode}-3`;
      const before = await transport.probe('old02', signal);
      const launched = await transport.launch(
        'old02',
        cycleRequest('old02', `run-${mode}-reboot`, { url: callback.url, token }),
        signal,
      );
      await waitFor('download done, install under way', async () =>
        (callback.events.get(token) ?? []).some((e) => e.kind === 'update-result' && e.phase === 'download')
          ? true
          : undefined,
      );
      await transport.reboot('old02');
      const back = await waitFor('old02 back', async () => {
        const s = await transport.probe('old02', AbortSignal.timeout(WAIT_TIMEOUT_MS));
        return s.reachable ? s : undefined;
      });
      assert.notEqual(back.bootId, before.bootId);
      assert.equal(await transport.isRunning('old02', launched, signal), false);
      if (mode === 'process') {
        // Nothing is left in the task's process group: the provider died with the agent.
        assert.throws(() => process.kill(-launched.pid, 0), { code: 'ESRCH' });
      }
      // The killed cycle never finished: no cycle-finished reached the connector.
      assert.equal(
        (callback.events.get(token) ?? []).some((e) => e.kind === 'cycle-finished'),
        false,
      );
    });
  });
}

describe('lab daemon close (inprocess)', () => {
  it('waits for the in-process agents it killed: nothing of theirs still runs once close() resolved', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pl-close-inprocess-'));
    const callback = new CallbackServer();
    const notes: string[] = [];
    try {
      const scenarioPath = join(dir, 'scenario.yaml');
      await writeFile(scenarioPath, SCENARIO);
      await callback.start();
      const daemon = await startLabDaemon({
        scenarioPath,
        dir: join(dir, 'lab'),
        mode: 'inprocess',
        idleShutdownMs: 0,
        log: (m) => notes.push(m),
      });
      const transport = createLabTransport({
        dir: daemon.dir,
        daemon: { connect: async () => ({ url: daemon.url, token: daemon.token }), close: async () => undefined },
      });
      const signal = AbortSignal.timeout(WAIT_TIMEOUT_MS);
      const token = 'tok-close';
      await transport.launch('old01', cycleRequest('old01', 'run-close', { url: callback.url, token }), signal);
      await waitFor('install under way', async () =>
        (callback.events.get(token) ?? []).some((e) => e.kind === 'update-result' && e.phase === 'download')
          ? true
          : undefined,
      );
      await daemon.close();
      // The killed agent's last word (its hand-over abandoned) comes before the daemon says the
      // hosts are off: `ended` settles at the kill, the agent's code unwinds after it.
      const stopped = notes.indexOf(POWERED_OFF_NOTE);
      const agentEnded = notes.findIndex((n) => n.startsWith('old01 ') && /LOG_HANDOVER_ABANDONED|killed/.test(n));
      assert.ok(stopped >= 0, notes.join('\n'));
      assert.ok(
        agentEnded >= 0 && agentEnded < stopped,
        `the agent ended after close() resolved:\n${notes.join('\n')}`,
      );
    } finally {
      await callback.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
