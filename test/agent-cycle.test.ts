/**
 * runCycle against a scripted provider: the behaviours an administrator sees in the cycle log —
 * fewest cycles (SSU → CU in one), pending reboot, busy installer, exclusive updates, loops,
 * abort, provider crash, failures and filters.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AgentEvent, AgentEventKind, CycleRequest } from '../src/domain/agent-log.ts';
import type { Clock } from '../src/agent/clock.ts';
import { runCycle, type CycleDeps } from '../src/agent/cycle.ts';
import { spawnProvider } from '../src/wua/client.ts';
import { fakeChannel, record, world, type FakeWorld } from './agent-fake-provider.ts';

function request(overrides: Partial<CycleRequest> = {}): CycleRequest {
  return {
    runId: 'r-1',
    host: 'web01',
    cycle: 1,
    mode: 'install',
    reboot: 'if-required',
    filters: {},
    exclude: [],
    installedEarlier: [],
    serverSelection: 'default',
    installerBusyTimeoutSeconds: 600,
    logHandoverTimeoutSeconds: 5,
    ...overrides,
  };
}

/** A clock whose sleeps return at once and move time forward: an hour of polling takes no time. */
function fakeClock(): Clock & { slept: number[] } {
  let now = Date.parse('2026-11-21T02:00:00Z');
  const slept: number[] = [];
  return {
    slept,
    now: () => new Date(now),
    sleep: async (ms, signal) => {
      signal.throwIfAborted();
      slept.push(ms);
      now += ms;
    },
  };
}

async function cycle(w: FakeWorld, req: CycleRequest, extra: Partial<CycleDeps> = {}) {
  const seen: AgentEvent[] = [];
  const summary = await runCycle(req, {
    openProvider: () => fakeChannel(w),
    sinks: [{ write: (e) => seen.push(e) }],
    clock: fakeClock(),
    signal: new AbortController().signal,
    random: () => 0,
    ...extra,
  });
  return {
    summary,
    events: seen,
    of: <K extends AgentEventKind>(kind: K) =>
      seen.filter((e): e is Extract<AgentEvent, { kind: K }> => e.kind === kind),
  };
}

const installRequests = (w: FakeWorld) => w.requests.flatMap((r) => (r.type === 'install' ? [r.updateIds] : []));

describe('runCycle', () => {
  it('installs a servicing stack and the cumulative update it unlocks in one cycle', async () => {
    const ssu = record('5050001', { title: 'Servicing Stack Update', rebootBehavior: 'never' });
    const cu = record('5050002', { title: 'Cumulative Update' });
    const w = world([{ record: ssu }, { record: cu, requires: [ssu.updateId], needsReboot: true }]);
    const { summary, events, of } = await cycle(w, request());

    assert.deepEqual(installRequests(w), [[ssu.updateId], [cu.updateId]]);
    assert.deepEqual(
      of('scan-result').map((s) => s.selected),
      [[ssu.updateId], [cu.updateId]],
    );
    assert.equal(summary.outcome, 'reboot-required');
    assert.equal(summary.willReboot, true);
    const finished = events.at(-1);
    assert.equal(finished?.kind, 'cycle-finished');
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
    assert.equal(events[0]?.kind, 'cycle-started');
    assert.equal(events[1]?.kind, 'preflight');
    assert.deepEqual(
      of('update-result')
        .filter((r) => r.phase === 'install')
        .map((r) => [r.resultCode, r.rebootRequired]),
      [
        ['succeeded', false],
        ['succeeded', true],
      ],
    );
  });

  it('rescans until nothing is left when no reboot is needed: outcome done, no reboot under if-required', async () => {
    const a = record('5050011');
    const b = record('5050012', { isDownloaded: true });
    const w = world([{ record: a }, { record: b }]);
    const { summary, of } = await cycle(w, request());
    assert.equal(summary.outcome, 'done');
    assert.equal(summary.willReboot, false);
    assert.equal(of('scan-result').length, 2);
    // Only the update that was not downloaded is downloaded.
    assert.deepEqual(
      w.requests.filter((r) => r.type === 'download').map((r) => r.type === 'download' && r.updateIds),
      [[a.updateId]],
    );
  });

  it('reboots under policy always when something was installed, even without a reboot required', async () => {
    const w = world([{ record: record('5050021') }]);
    const { summary } = await cycle(w, request({ reboot: 'always' }));
    assert.equal(summary.outcome, 'done');
    assert.equal(summary.rebootRequired, false);
    assert.equal(summary.willReboot, true);
  });

  it('ends with reboot-pending before installing anything when a reboot is pending at start', async () => {
    const w = world([{ record: record('5050031') }], { pendingReboot: true });
    const { summary, of } = await cycle(w, request());
    assert.equal(summary.outcome, 'reboot-pending');
    assert.equal(summary.willReboot, true);
    assert.deepEqual(
      w.requests.map((r) => r.type),
      ['rebootStatus'],
    );
    assert.equal(of('preflight')[0]?.rebootRequired, true);

    const never = await cycle(world([], { pendingReboot: true }), request({ reboot: 'never' }));
    assert.equal(never.summary.willReboot, false);
  });

  it('scans anyway in scan mode with a pending reboot, notes it, and does not reboot', async () => {
    const w = world([{ record: record('5050041') }], { pendingReboot: true });
    const { summary, of } = await cycle(w, request({ mode: 'scan', reboot: 'always' }));
    assert.equal(summary.outcome, 'done');
    assert.equal(summary.willReboot, false);
    assert.equal(summary.rebootRequired, true);
    assert.equal(of('scan-result')[0]?.selected.length, 1);
    assert.match(of('warning')[0]?.message ?? '', /reboot is pending/);
    assert.ok(!w.requests.some((r) => r.type === 'install' || r.type === 'download'));
  });

  it('waits out a busy installer with capped backoff, then installs', async () => {
    const w = world([{ record: record('5050051') }], { busyPolls: 6 });
    const clock = fakeClock();
    const { summary, of } = await cycle(w, request({ installerBusyTimeoutSeconds: 3_600 }), { clock });
    assert.equal(summary.outcome, 'done');
    assert.equal(of('waiting')[0]?.seconds, 3_600);
    assert.equal(installRequests(w).length, 1);
    // Preflight saw the first busy answer; five more polls were busy, the sixth found it free.
    assert.deepEqual(clock.slept, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
  });

  it('gives up on an installer that stays busy with failed and WU_E_INSTALL_NOT_ALLOWED', async () => {
    const w = world([{ record: record('5050061') }], { busyPolls: 1_000 });
    const { summary } = await cycle(w, request({ installerBusyTimeoutSeconds: 120 }));
    assert.equal(summary.outcome, 'failed');
    assert.equal(summary.hresult, '0x80240016');
    assert.equal(summary.willReboot, false);
    assert.equal(installRequests(w).length, 0);
  });

  it('retries an install that answered installer busy (0x80240016) after waiting', async () => {
    const u = record('5050071');
    const w = world([{ record: u }], { busyInstalls: 1 });
    const { summary, of } = await cycle(w, request());
    assert.equal(of('waiting').length, 1);
    assert.deepEqual(installRequests(w), [[u.updateId], [u.updateId]]);
    assert.equal(summary.outcome, 'done');
  });

  it('installs an exclusive update alone, then the others after a rescan', async () => {
    const a = record('5050081');
    const x = record('5050082', { impact: 'exclusive' });
    const b = record('5050083');
    const w = world([{ record: a }, { record: x }, { record: b }]);
    const { summary } = await cycle(w, request());
    assert.deepEqual(installRequests(w), [[x.updateId], [a.updateId, b.updateId]]);
    assert.equal(summary.outcome, 'done');
  });

  it('ends the cycle after an exclusive update that needs a reboot', async () => {
    const a = record('5050091');
    const x = record('5050092', { impact: 'exclusive' });
    const w = world([{ record: a }, { record: x, needsReboot: true }]);
    const { summary } = await cycle(w, request());
    assert.deepEqual(installRequests(w), [[x.updateId]]);
    assert.equal(summary.outcome, 'reboot-required');
  });

  it('detects an update installed in an earlier cycle that is offered again, and goes on with the rest', async () => {
    const back = record('5050101');
    const other = record('5050102');
    const w = world([{ record: back }, { record: other }]);
    const { summary, of } = await cycle(w, request({ installedEarlier: [back.updateId] }));
    assert.deepEqual(
      of('loop-detected').map((e) => e.updateIds),
      [[back.updateId]],
    );
    assert.deepEqual(installRequests(w), [[other.updateId]]);
    assert.equal(summary.outcome, 'loop-detected');
    assert.ok(of('scan-result')[0]?.skipped.some((s) => s.updateId === back.updateId && s.reason === 'loop'));
  });

  it('detects an update that rolls back within the cycle instead of installing it forever', async () => {
    const sticky = record('5050111', { rebootBehavior: 'never' });
    const w = world([{ record: sticky, rollsBack: true }]);
    const { summary, of } = await cycle(w, request());
    assert.equal(installRequests(w).length, 1);
    assert.deepEqual(of('loop-detected')[0]?.updateIds, [sticky.updateId]);
    assert.equal(summary.outcome, 'loop-detected');
  });

  it('reports failed updates, goes on with the rest, and does not reboot for a failure', async () => {
    const bad = record('5050121');
    const good = record('5050122');
    const w = world([{ record: bad, failInstall: '0x80242016' }, { record: good }]);
    const { summary, of } = await cycle(w, request({ reboot: 'always' }));
    assert.equal(summary.outcome, 'failed');
    assert.equal(summary.willReboot, false);
    assert.deepEqual(summary.installed, [good.updateId]);
    assert.equal(
      of('update-result').find((r) => r.updateId === bad.updateId && r.phase === 'install')?.hresult,
      '0x80242016',
    );
    // The failed update is not retried in the same cycle.
    assert.equal(installRequests(w).length, 1);
  });

  it('applies filters and the engine exclusions, and says why each update was skipped', async () => {
    const sec = record('5050131');
    const def = record('5050132', { classification: 'Definition Updates' });
    const excluded = record('5050133');
    const driver = record('5050134', { type: 'driver' });
    const w = world([{ record: sec }, { record: def }, { record: excluded }, { record: driver }]);
    const { of } = await cycle(
      w,
      request({ mode: 'scan', filters: { classifications: ['Security Updates'] }, exclude: [excluded.updateId] }),
    );
    const scan = of('scan-result')[0];
    assert.deepEqual(scan?.selected, [sec.updateId]);
    assert.equal(scan?.found.length, 4);
    assert.deepEqual(Object.fromEntries(scan?.skipped.map((s) => [s.updateId, s.reason]) ?? []), {
      [def.updateId]: 'classification',
      [excluded.updateId]: 'excluded',
      [driver.updateId]: 'driver',
    });
    const search = w.requests.find((r) => r.type === 'search');
    assert.equal(search?.type === 'search' && search.criteria, 'IsInstalled=0 and IsHidden=0');
  });

  it('downloads without installing in download mode', async () => {
    const u = record('5050141');
    const w = world([{ record: u }]);
    const { summary, of } = await cycle(w, request({ mode: 'download', reboot: 'always' }));
    assert.equal(summary.outcome, 'done');
    assert.equal(summary.willReboot, false);
    assert.deepEqual(
      of('update-result').map((r) => [r.phase, r.updateId]),
      [['download', u.updateId]],
    );
    assert.equal(installRequests(w).length, 0);
  });

  it('aborts a running install: sends abort, records the aborted result, outcome aborted', async () => {
    const slow = record('5050151');
    const w = world([{ record: slow, hangs: true }]);
    const controller = new AbortController();
    const seen: AgentEvent[] = [];
    const summary = await runCycle(request(), {
      openProvider: () => fakeChannel(w),
      clock: fakeClock(),
      signal: controller.signal,
      sinks: [
        {
          write: (e) => {
            seen.push(e);
            if (e.kind === 'progress' && e.phase === 'install') controller.abort();
          },
        },
      ],
    });
    assert.equal(summary.outcome, 'aborted');
    assert.equal(summary.willReboot, false);
    assert.ok(w.requests.some((r) => r.type === 'abort'));
    const result = seen.find((e) => e.kind === 'update-result' && e.phase === 'install');
    assert.ok(result?.kind === 'update-result' && result.resultCode === 'aborted', JSON.stringify(result));
    assert.equal(seen.at(-1)?.kind, 'cycle-finished');
  });

  it('ends with outcome error and a clear message when the provider crashes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchline-crash-'));
    try {
      const script = join(dir, 'crash.mjs');
      writeFileSync(
        script,
        `
        import { createInterface } from 'node:readline';
        const send = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
        send({ type: 'hello', protocol: 1, provider: 'crashy', version: '0', computerName: 'web01' });
        createInterface({ input: process.stdin }).on('line', (l) => {
          const r = JSON.parse(l);
          if (r.type === 'rebootStatus') send({ type: 'result', requestId: r.id, request: 'rebootStatus', resultCode: 'succeeded', hresult: null,
            data: { rebootRequired: false, installerBusy: false, lastBootUpTime: 'x' } });
          else { process.stderr.write('Unhandled exception: 0x8007000E out of memory\\n'); process.exit(9); }
        });
      `,
      );
      const { summary, events } = await cycle(world([]), request(), {
        openProvider: () => spawnProvider([process.execPath, script]),
      });
      assert.equal(summary.outcome, 'error');
      assert.match(summary.message ?? '', /PROVIDER_CRASHED.*code 9 while search ran.*out of memory/);
      assert.equal(events.at(-1)?.kind, 'cycle-finished');
      assert.equal(summary.internalError, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends with outcome error, the HRESULT and what it means when the search fails', async () => {
    const { summary } = await cycle(world([], { searchFails: '0x8024402C' }), request());
    assert.equal(summary.outcome, 'error');
    assert.equal(summary.hresult, '0x8024402C');
    assert.match(summary.message ?? '', /search failed.*WU_E_PT_WINHTTP_NAME_NOT_RESOLVED.*proxy/);
  });

  it('still writes cycle-started and cycle-finished when the provider cannot start', async () => {
    const { summary, events } = await cycle(world([]), request(), {
      openProvider: () => spawnProvider(['/nonexistent/provider']),
    });
    assert.equal(summary.outcome, 'error');
    assert.deepEqual(
      events.map((e) => e.kind),
      ['cycle-started', 'cycle-finished'],
    );
    assert.match(summary.message ?? '', /PROVIDER_CRASHED.*ENOENT/);
  });
});
