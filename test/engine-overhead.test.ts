/**
 * Orchestration overhead: with every simulated duration at zero (installs, reboots, probe delays),
 * what remains of a run's time is what the engine adds per host cycle — state writes, callback
 * round trips, probes. Prints the figures; fails only if the engine became grossly slower.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRun } from '../src/engine/run.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { CHAIN, FAST_TIMING, never, runOptions, testEnv } from './engine-helpers.ts';

/** Far above what we measure: only a gross regression trips it. */
const MAX_CPU_PER_CYCLE_MS = 250;

for (const [label, hostCount, parallel] of [
  ['serial', 5, 1],
  ['parallel 20', 20, 20],
] as const) {
  test(`engine overhead per host cycle (${label})`, async () => {
    const env = await testEnv();
    try {
      // Warm up first (module loading, JIT, the HTTP client's pool): a connector runs for hours.
      const warm = new FakeFleet([{ name: 'w1', updates: [...CHAIN], stepMs: 0, rebootMs: 0 }]);
      await startRun(
        env.deps(warm, { timing: { ...FAST_TIMING, probeInitialDelayMs: 5, probeMaxDelayMs: 5 } }),
        runOptions(['w1']),
        never,
      );
      const names = Array.from({ length: hostCount }, (_, i) => `h${i + 1}`);
      const fleet = new FakeFleet(names.map((name) => ({ name, updates: [...CHAIN], stepMs: 0, rebootMs: 0 })));
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const result = await startRun(
        env.deps(fleet, { timing: { ...FAST_TIMING, probeInitialDelayMs: 5, probeMaxDelayMs: 5 } }),
        runOptions(names, { parallel }),
        never,
      );
      const elapsedMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuBefore);
      const cpuMs = (cpu.user + cpu.system) / 1000;
      const summary = JSON.stringify(
        result.report.hosts
          .filter((h) => h.outcome !== 'compliant' || h.cycles !== 4)
          .map((h) => [h.name, h.outcome, h.cycles, h.message]),
      );
      assert.equal(result.exitCode, 0, summary);
      const cycles = result.report.hosts.reduce((n, h) => n + h.cycles, 0);
      assert.equal(cycles, hostCount * 4, summary);
      // CPU time is the stable figure on a shared machine; it includes the simulated agents' HTTP posts.
      const cpuPerCycleMs = cpuMs / cycles;
      process.stdout.write(
        `# overhead ${label}: ${cycles} host cycles in ${elapsedMs.toFixed(0)} ms wall (${(elapsedMs / cycles).toFixed(1)} ms per cycle), ${cpuPerCycleMs.toFixed(1)} ms CPU per host cycle\n`,
      );
      assert.ok(cpuPerCycleMs < MAX_CPU_PER_CYCLE_MS, `${cpuPerCycleMs} ms CPU per host cycle`);
    } finally {
      await env.cleanup();
    }
  });
}
