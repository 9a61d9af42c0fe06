/**
 * A service stopped while it starts returns: run() loads its state from disk before its loops start,
 * and a stop (the Windows service control manager's, or a lab host rebooting) can come during that
 * load. The work loop then waited for an 'abort' event that had already fired, and run() never
 * returned — a server --lab run hung in its stop this way in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../engine/manual-clock.ts';
import { AgentHttp } from './http.ts';
import { serviceForTest } from './test-service.ts';

test('a service stopped while it loads its state returns at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-agent-stop-'));
  // Nothing listens there: a check-in would fail, but a stopped service must not even try.
  const http = new AgentHttp({ serverUrl: 'http://127.0.0.1:9', fingerprint: null, credential: 'x' });
  try {
    const service = await serviceForTest({
      stateDir: join(dir, 'agent'),
      http,
      clock: new ManualClock(new Date('2026-03-02T10:00:00Z')),
      openProvider: () => assert.fail('a stopped service starts no provider'),
    });
    const stop = new AbortController();
    const running = service.run(stop.signal);
    stop.abort(new Error('service stopping')); // while run() still reads its state from disk
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      running.then(() => 'returned'),
      new Promise((resolve) => (timer = setTimeout(() => resolve('still running after 5 s'), 5_000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, 'returned');
  } finally {
    await http.close();
    await rm(dir, { recursive: true, force: true });
  }
});
