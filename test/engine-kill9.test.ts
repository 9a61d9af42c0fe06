/**
 * Engine: a connector killed with SIGKILL mid-run (a real child process) is resumed from its state
 * file; the run finishes with a complete report and no update installed twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/store/db.ts';
import { resumeRun } from '../src/engine/run.ts';
import type { RunLogEvent } from '../src/engine/types.ts';
import { transportFailureOf } from '../src/transports/transport.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { CHAIN, DEFENDER, NET, SSU, never, runOptions, testEnv } from './engine-helpers.ts';

const RUNNER = fileURLToPath(new URL('./engine-child-runner.ts', import.meta.url));

test('kill -9 of the connector mid-install, then resume: complete report, nothing installed twice', async () => {
  // Real time: the child connector runs on it, and the fleet's simulated durations must too.
  const env = await testEnv({ realTime: true });
  await env.store.close(); // the child owns the file until it dies
  const fleet = new FakeFleet([
    // Each install step takes 400 ms of real time, so the kill lands while cycle 2 still installs
    // even when the machine is loaded (at 40 ms the cycle sometimes ended before SIGKILL arrived).
    { name: 'web01', updates: [...CHAIN, DEFENDER], stepMs: 400 },
    { name: 'web02', updates: [SSU], rebootMs: 200 },
  ]);
  const child = fork(RUNNER, [env.file, JSON.stringify(runOptions(['web01', 'web02']))], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const log: RunLogEvent[] = [];
  let runId = '';
  const killed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the child never reached the kill point')), 20_000);
    child.on('message', (m: { type: string; id?: number; method?: string; args?: unknown[]; event?: RunLogEvent }) => {
      if (m.type === 'call') {
        const fn = (fleet as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m.method!]!;
        fn.apply(fleet, m.args ?? []).then(
          (result) => child.connected && child.send({ id: m.id, result: result ?? null }),
          (error: Error) =>
            child.connected && child.send({ id: m.id, error: error.message, kind: transportFailureOf(error) }),
        );
      } else if (m.type === 'log' && m.event) {
        log.push(m.event);
        runId = m.event.runId;
        // Kill while web01's second cycle is installing (its first cycle's SSU is committed).
        const e = m.event;
        if (e.host === 'web01' && e.kind === 'agent-event' && e.cycle === 2 && e.event.kind === 'progress') {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      } else if (m.type === 'done') {
        clearTimeout(timer);
        reject(new Error('the run finished before it was killed'));
      }
    });
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await killed;
    assert.equal(await exited, 'SIGKILL');
    assert.ok(runId);
    const store = await openStore(env.file);
    try {
      const events: RunLogEvent[] = [];
      const result = await resumeRun({ ...env.deps(fleet), store, log: (e) => events.push(e) }, runId, never);
      assert.equal(result.exitCode, 0, JSON.stringify(result.report.hosts.map((h) => [h.name, h.outcome, h.message])));
      const web01 = result.report.hosts.find((h) => h.name === 'web01')!;
      assert.equal(web01.outcome, 'compliant');
      // The report is complete: every update of the chain, installed once, including the one
      // installed while no connector was listening.
      for (const u of [SSU, ...CHAIN.slice(1), DEFENDER]) {
        assert.equal(web01.updates.find((x) => x.updateId === u.id)?.result, 'installed', `KB${u.kb} in the report`);
        assert.equal(fleet.installs('web01', u.id), 1, `KB${u.kb} installed once`);
      }
      assert.equal(fleet.installs('web01', NET.id), 1);
      assert.equal(result.report.hosts.find((h) => h.name === 'web02')?.outcome, 'compliant');
      assert.ok(
        events.some((e) => e.kind === 'stream-lost' && e.host === 'web01'),
        'the lost stream was noticed',
      );
      assert.ok(
        events.some((e) => e.kind === 'log-fetched' && e.host === 'web01'),
        'the log of the interrupted cycle was read',
      );
    } finally {
      await store.close();
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await env.cleanup();
  }
});
