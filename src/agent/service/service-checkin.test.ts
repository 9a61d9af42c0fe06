/**
 * The agent service against a scripted server on loopback (real HTTP, the agent protocol's check-in
 * route only): it names the policy it holds in each check-in and keeps it when the answer leaves it
 * out, takes a changed one, and a failed scan is retried after a minute, then two — never at once,
 * which spun the agent and hammered the server with scans.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { policyDigest, type AgentPolicy, type CheckinResponse } from '../../domain/agent-protocol.ts';
import { ManualClock } from '../../engine/manual-clock.ts';
import { AgentHttp } from './http.ts';
import { serviceForTest } from './test-service.ts';

const T0 = new Date('2026-03-02T10:00:00Z');
const P1: AgentPolicy = {
  ring: 'pilot',
  scanIntervalSeconds: 3600,
  scanSource: 'online',
  windows: [],
  reboot: 'if-required',
  installAtShutdown: false,
  directDownload: false,
  allowedUpdateIds: [],
};
const P2: AgentPolicy = { ...P1, allowedUpdateIds: ['00000000-0000-4000-8000-000000000001'] };

/** Resolves when `count()` reaches `n` (checked on each `poke()`). */
function counter(): { count: number; poke(): void; reach(n: number): Promise<void> } {
  const waiters: { n: number; resolve: () => void }[] = [];
  const c = {
    count: 0,
    poke() {
      c.count++;
      for (const w of waiters.filter((w) => c.count >= w.n)) w.resolve();
    },
    reach: (n: number) =>
      c.count >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
  };
  return c;
}

test('check-ins name the policy held; an answer without it keeps it; a failed scan is retried after 1 min, then 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-agent-checkin-'));
  const bodies: { policyDigest?: string }[] = [];
  const checkins = counter();
  const held: ServerResponse[] = [];
  // The script: P1; then "you hold it" (no policy); then P2; then held until the end.
  const answers: ((res: ServerResponse) => void)[] = [P1, null, P2].map((policy) => (res) => {
    const body: CheckinResponse = {
      serverTime: T0.toISOString(),
      actions: [],
      ...(policy ? { policy } : {}),
      policyDigest: policyDigest(policy ?? P1),
      catalogSha256: null,
      ackedReportSeq: 0,
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/api/v1/agent/checkin') return res.writeHead(404).end();
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { policyDigest?: string });
      const answer = answers.shift();
      if (answer) answer(res);
      else held.push(res);
      checkins.poke();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const http = new AgentHttp({ serverUrl: url, fingerprint: null, credential: 'plh1.x.y' });
  const clock = new ManualClock(T0);
  const scans = counter();
  const logs: string[] = [];
  const stop = new AbortController();
  try {
    const service = await serviceForTest({
      stateDir: join(dir, 'agent'),
      http,
      clock,
      openProvider: () => {
        scans.poke();
        throw new Error('the Windows Update Agent is not answering');
      },
      log: (m) => logs.push(m),
    });
    const running = service.run(stop.signal);

    await checkins.reach(4);
    assert.deepEqual(
      bodies.map((b) => b.policyDigest),
      [undefined, policyDigest(P1), policyDigest(P1), policyDigest(P2)],
      'the first check-in holds no policy; the next name the one held, kept while the answer left it out',
    );
    assert.deepEqual(
      logs.filter((m) => m.startsWith('check-in failed')),
      [],
    );

    await scans.reach(1);
    await clock.advance(59_000);
    assert.equal(scans.count, 1, 'a failed scan is not retried at once');
    assert.ok(
      logs.some((m) => m.includes('scan failed') && m.includes('next scan in 60 s')),
      logs.join('\n'),
    );
    await clock.advance(1_000);
    await scans.reach(2);
    await clock.advance(119_000);
    assert.equal(scans.count, 2, 'the second retry waits twice as long');
    await clock.advance(1_000);
    await scans.reach(3);

    stop.abort(new Error('test over'));
    for (const res of held) res.destroy();
    await running;
  } finally {
    stop.abort(new Error('test over'));
    await http.close();
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
