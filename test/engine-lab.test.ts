/**
 * Engine + the real lab transport (daemon, task scheduler, shipped agent, simulated WUA provider),
 * in process: the fault scenario's hosts end as an administrator would expect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLabTransport } from '../src/lab/daemon-main.ts';
import { openStore } from '../src/store/db.ts';
import { startRun } from '../src/engine/run.ts';
import { systemClock } from '../src/engine/clock.ts';
import type { RunLogEvent } from '../src/engine/types.ts';
import { FAST_TIMING, never, runOptions } from './engine-helpers.ts';

const FAULTS = fileURLToPath(new URL('../examples/lab/faults.yaml', import.meta.url));

test(
  'lab faults scenario: compliant, retried, failed with HRESULT, unreachable, pending reboot, loop, refused launch',
  { timeout: 120_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-engine-lab-'));
    // The shipped fault scenario, 4× faster still (a 60 s reboot takes 0.3 s).
    const scenarioPath = join(dir, 'faults.yaml');
    await writeFile(scenarioPath, (await readFile(FAULTS, 'utf8')).replace(/^timeScale: .*$/m, 'timeScale: 0.005'));
    const transport = openLabTransport({ scenarioPath, dir: join(dir, 'lab'), mode: 'inprocess' });
    const store = await openStore(join(dir, 'state.sqlite'));
    const events: RunLogEvent[] = [];
    try {
      const hosts = ['ok01', 'retry01', 'broken01', 'lost01', 'pending01', 'loop01', 'denied01'];
      const started = Date.now();
      const result = await startRun(
        {
          store,
          transport,
          clock: systemClock,
          log: (e) => events.push(e),
          timing: {
            ...FAST_TIMING,
            probeInitialDelayMs: 50,
            probeMaxDelayMs: 200,
            agentPollMs: 100,
            streamSilenceMs: 5_000,
          },
        },
        runOptions(hosts, { rebootTimeoutMs: 3_000, maxCycles: 6, logHandoverTimeoutSeconds: 2 }),
        never,
      );
      const by = new Map(result.report.hosts.map((h) => [h.name, h]));
      const summary = JSON.stringify(
        result.report.hosts.map((h) => [h.name, h.outcome, h.cycles, h.message]),
        null,
        1,
      );
      assert.equal(by.get('ok01')?.outcome, 'compliant', summary);
      assert.equal(by.get('retry01')?.outcome, 'compliant', summary);
      assert.equal(by.get('retry01')?.updates.find((u) => u.kb === '5044447')?.attempts, 2, summary);
      const broken = by.get('broken01');
      assert.equal(broken?.outcome, 'failed', summary);
      const cu = broken?.updates.find((u) => u.kb === '5044445');
      assert.equal(cu?.result, 'failed');
      assert.equal(cu?.hresult, '0x800F0922');
      assert.ok(
        broken?.updates.some((u) => u.kb === '5044444' && u.result === 'installed'),
        'the SSU still installed',
      );
      assert.equal(by.get('lost01')?.outcome, 'unreachable', summary);
      assert.equal(by.get('pending01')?.outcome, 'compliant', summary);
      assert.ok((by.get('pending01')?.reboots ?? 0) >= 1);
      assert.equal(by.get('loop01')?.outcome, 'failed', summary);
      assert.match(by.get('loop01')?.message ?? '', /offered again after the reboot|install does not stick|loop/i);
      assert.equal(by.get('denied01')?.outcome, 'access-denied', summary);
      assert.match(by.get('denied01')?.message ?? '', /0x80070005/);
      assert.equal(result.exitCode, 3);
      process.stdout.write(`# lab run of ${hosts.length} hosts took ${Date.now() - started} ms\n`);
    } finally {
      // close() returns once the in-process agents it killed have ended (lab daemon-launch test):
      // nothing writes into DIR after this, so one removal is enough.
      await transport.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
