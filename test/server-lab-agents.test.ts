/**
 * `patchline server --lab` with its agents in the server's process and in processes of their own
 * (the same code either way, over real HTTP): every host of examples/lab/small.yaml enrolls and
 * reports; once a rule allows the security updates and an install action goes out, both hosts
 * install the whole chain (SSU → CU → reboot → .NET) — and every payload comes from the server's
 * content cache: the lab's upstream served each file exactly once (1.00×), however many hosts
 * needed it, and the agents never went to the upstream themselves. Cleanup then frees what no host
 * needs once its grace is over, and a catalog sync on request imports nothing when nothing changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createApiToken } from '../src/server/accounts.ts';
import { startServerRun, type ServerRun } from '../src/cli/server-run.ts';
import type { LabAgentMode } from '../src/cli/server-lab-agents.ts';
import { until } from './support/until.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SCENARIO = join(ROOT, 'examples/lab/small.yaml');
const CLI = [process.execPath, join(ROOT, 'bin/patchline.js')];

async function labRun(mode: LabAgentMode): Promise<void> {
  const data = await mkdtemp(join(tmpdir(), 'patchline-lab-agents-'));
  const lines: string[] = [];
  let run: ServerRun | undefined;
  let failed = false;
  try {
    run = await startServerRun(
      { lab: SCENARIO, data, listen: '127.0.0.1:0', labAgents: mode, labTimeScale: '0.005', contentGrace: '1ms' },
      CLI,
      (l) => lines.push(l),
    );
    const { running, lab, content } = run;
    assert.ok(lab);
    assert.match(lines.join('\n'), /sign in: {2}admin \/ \S{12,}/, 'the admin login is printed');
    const token = (await createApiToken(running.deps, { actor: 'test', ip: null }, { name: 'test', role: 'admin' }))
      .token;
    const api = async <T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T> => {
      const r = await running.app.inject({
        method,
        url: `/api/v1${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(body ? { payload: body } : {}),
      });
      assert.ok(r.statusCode < 300, `${method} ${path} → ${r.statusCode} ${r.body}`);
      return r.json() as T;
    };
    type Hosts = { hosts: { name: string; lastScanAt: string | null; ring: string }[] };
    let hosts: Hosts = { hosts: [] };
    await until(
      'every lab host to enroll and report a scan',
      60_000,
      async () => {
        hosts = await api<Hosts>('GET', '/hosts');
        return hosts.hosts.length === lab.scenario.hosts.length && hosts.hosts.every((h) => h.lastScanAt)
          ? true
          : undefined;
      },
      () => JSON.stringify(hosts.hosts.map((h) => [h.name, h.lastScanAt])),
    );
    assert.deepEqual(hosts.hosts.map((h) => [h.name, h.ring]).sort(), [
      ['web01', 'pilot'],
      ['web02', 'broad'],
    ]);
    assert.equal(lab.payloadRequests(), 0, 'nothing is downloaded before a rule allows it');

    await api('POST', '/rules', { action: 'allow', classifications: ['Security Updates'] });
    await api('POST', '/actions', { action: 'install', hosts: ['web01', 'web02'] });
    type Updates = { updates: { kb: string | null; classification: string | null; state: string }[] };
    const seen = new Map<string, string>();
    for (const host of ['web01', 'web02']) {
      await until(
        `${host}'s security updates to be OK`,
        90_000,
        async () => {
          const list = (await api<Updates>('GET', `/hosts/${host}/updates`)).updates.filter(
            (u) => u.classification === 'Security Updates',
          );
          seen.set(host, list.map((u) => `KB${u.kb}:${u.state}`).join(' '));
          return list.length === 3 && list.every((u) => u.state === 'OK') ? true : undefined;
        },
        () => seen.get(host) ?? 'nothing',
      );
    }
    const stats = content.stats();
    assert.equal(stats.files, 3, "the three security updates' files are cached (the definition update is not allowed)");
    assert.equal(
      lab.payloadRequests(),
      stats.files,
      'the upstream served each payload file once: every agent got it from the cache',
    );
    assert.equal(stats.upstreamBytes, stats.bytes, 'upstream bytes = unique needed bytes (1.00×)');
    assert.ok(
      stats.servedBytes >= 2 * stats.bytes,
      `the cache served every file to both hosts (${stats.servedBytes} bytes served, ${stats.bytes} cached)`,
    );
    const metrics = (
      await running.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } })
    ).body;
    assert.match(metrics, new RegExp(`patchline_content_served_bytes_total ${stats.servedBytes}\\b`));

    // No host needs those files any more and this lab's grace is 1 ms: cleanup frees them all and says so.
    const cleaned = await api<{ deleted: unknown[]; bytesFreed: number; kept: number }>('POST', '/content/cleanup');
    assert.deepEqual([cleaned.deleted.length, cleaned.bytesFreed, cleaned.kept], [3, stats.bytes, 0]);
    assert.equal((await api<{ files: number }>('GET', '/content')).files, 0);

    // A sync on request: the catalog did not change, so nothing is imported again.
    type Catalog = { current: { id: number } | null; syncing: boolean };
    const before = await api<Catalog>('GET', '/catalog');
    assert.ok(before.current, 'the lab catalog is the current one');
    assert.equal((await api<{ started: boolean }>('POST', '/catalog/sync')).started, true);
    let after: Catalog = before;
    await until(
      'the requested catalog sync to finish',
      30_000,
      async () => ((after = await api<Catalog>('GET', '/catalog')).syncing ? undefined : true),
      () => JSON.stringify(after),
    );
    assert.equal(after.current?.id, before.current.id, 'an unchanged catalog is not imported again');
  } catch (error) {
    failed = true;
    // What the server and its lab said last: the cause of a stuck install is there.
    (error as Error).message += `\nserver --lab log, last lines:\n${lines.slice(-40).join('\n')}`;
    throw error;
  } finally {
    // Stopping waits for every lab agent, a rebooting one too: nothing writes into the data
    // directory after, so it can be removed (or backed up) at once (ENOTEMPTY once in CI before).
    const stopping = Date.now();
    await run?.stop();
    const stopMs = Date.now() - stopping;
    await rm(data, { recursive: true, force: true });
    if (!failed)
      assert.ok(stopMs < 30_000, `server --lab stopped in ${stopMs} ms; its log ends:\n${lines.slice(-40).join('\n')}`);
  }
}

test(
  'server --lab, agents in-process: the chain goes in on both hosts, each payload fetched from upstream once',
  // Above the sum of the waits inside (60 + 90 + 90 + 30 s), so a stuck step fails with its own message.
  { timeout: 300_000 },
  () => labRun('in-process'),
);
test('server --lab, agents in processes of their own: the same', { timeout: 300_000 }, () => labRun('process'));
