/**
 * runAgentCycle, in process: the order cycle-finished → rebooting → log safe → reboot, the pipe
 * hand-over read by a real client, and what happens when the host cannot be rebooted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runAgentCycle } from '../src/agent/agent-run.ts';
import { systemClock } from '../src/agent/clock.ts';
import type { AgentEvent, CycleRequest } from '../src/domain/agent-log.ts';
import { PatchlineError } from '../src/domain/errors.ts';
import { fakeChannel, record, world } from './agent-fake-provider.ts';

function request(overrides: Partial<CycleRequest>): CycleRequest {
  return {
    runId: 'r-run',
    host: 'web01',
    cycle: 3,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 60,
    logHandoverTimeoutSeconds: 10,
    ...overrides,
  };
}

describe('runAgentCycle', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-agent-run-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('emits rebooting last, hands the whole log to a pipe reader, and only then reboots', async () => {
    const order: string[] = [];
    const pipePath = join(dir, 'run.sock');
    const stdout = new PassThrough();
    let printed = '';
    stdout.on('data', (c: Buffer) => {
      printed += c.toString('utf8');
    });
    const w = world([{ record: record('5070001'), needsReboot: true }]);
    const running = runAgentCycle(request({ pipePath }), {
      openProvider: () => fakeChannel(w),
      clock: systemClock,
      signal: new AbortController().signal,
      stdout,
      // "win32": the reboot plan is shutdown.exe, which the stub below stands in for.
      report: () => undefined,
      env: { PATCHLINE_LOG_DIR: join(dir, 'logs') },
      platform: 'win32',
      agentVersion: 'test',
      reboot: async (plan) => {
        order.push(`reboot ${plan.kind}`);
      },
    });
    const fromPipe = await readWhenListening(pipePath);
    order.push('log read');
    const result = await running;

    assert.deepEqual(order, ['log read', 'reboot command']);
    assert.deepEqual(result.handover, { via: 'pipe' });
    assert.equal(result.rebooted, true);
    const kinds = fromPipe.map((e) => e.kind);
    assert.deepEqual(kinds.slice(-2), ['cycle-finished', 'rebooting']);
    // stdout carried the same events, as JSON lines.
    assert.deepEqual(
      printed
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as AgentEvent).seq),
      fromPipe.map((e) => e.seq),
    );
  });

  it('says in the log that it cannot reboot, writes the log file, then fails with REBOOT_UNAVAILABLE', async () => {
    const w = world([{ record: record('5070002'), needsReboot: true }]);
    const logs = join(dir, 'noreboot');
    await assert.rejects(
      runAgentCycle(request({ logHandoverTimeoutSeconds: 0 }), {
        openProvider: () => fakeChannel(w),
        clock: systemClock,
        signal: new AbortController().signal,
        report: () => undefined,
        env: { PATCHLINE_LOG_DIR: logs },
        platform: 'linux',
        agentVersion: 'test',
      }),
      (e: unknown) => e instanceof PatchlineError && e.code === 'REBOOT_UNAVAILABLE',
    );
    const events = readFileSync(join(logs, 'r-run-web01-3.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AgentEvent);
    const last = events.at(-1);
    assert.ok(last?.kind === 'warning' && /not rebooted/.test(last.message));
    assert.ok(!events.some((e) => e.kind === 'rebooting'));
  });
});

/** Connects as soon as the agent listens (bounded) and reads the log to EOF. */
async function readWhenListening(path: string, timeoutMs = 10_000): Promise<AgentEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = connect(path);
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        socket.on('error', reject);
      });
      return text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AgentEvent);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
