/**
 * The install action's passes against a tiny fake host (a chain with prerequisites and reboots)
 * and a fake server that allows what a rule allows: how the action ends, when it reboots, where it
 * resumes, and the limits (passes, an update that comes back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ActionProgress, AgentAction, AgentPolicy } from '../../domain/agent-protocol.ts';
import type { UpdateRecord } from '../../domain/update.ts';
import type { CycleSummary } from '../cycle.ts';
import { installable, MAX_INSTALL_PASSES, rebootAfterPass, runInstallAction } from './install-action.ts';
import type { RunningAction } from './state.ts';

interface Spec {
  readonly id: string;
  readonly kb: string;
  readonly requires?: string;
  readonly reboot?: boolean;
  /** Comes back as needed after every install (a silent rollback). */
  readonly sticky?: boolean;
}

const CHAIN: Spec[] = [
  { id: 'ssu', kb: '1' },
  { id: 'cu', kb: '2', requires: 'ssu', reboot: true },
  { id: 'net', kb: '3', requires: 'cu' },
];

const record = (s: Spec): UpdateRecord => ({ updateId: s.id, kbs: [s.kb], title: s.id }) as unknown as UpdateRecord;

/** A host whose applicability follows prerequisites and reboots, and a server that allows `allowed`. */
function fakeHost(specs: Spec[], options: { allowed?: string[]; reboot?: AgentPolicy['reboot'] } = {}) {
  const installed = new Map<string, { rebootDone: boolean }>();
  const log: string[] = [];
  const progress: Omit<ActionProgress, 'protocol' | 'at'>[] = [];
  let saved: RunningAction | null = null;
  let reboots = 0;
  const needed = () =>
    specs.filter(
      (s) => (!installed.has(s.id) || s.sticky) && (!s.requires || installed.get(s.requires)?.rebootDone === true),
    );
  const ports = {
    log: (m: string) => log.push(m),
    scanAndReport: async () => ({
      needed: needed().map(record),
      installed: [],
      rebootPending: [...installed.values()].some((i) => !i.rebootDone),
    }),
    policyAfterReport: async (): Promise<AgentPolicy> => ({
      ring: 'r',
      scanIntervalSeconds: 3600,
      scanSource: 'online',
      windows: [],
      reboot: options.reboot ?? 'if-required',
      installAtShutdown: false,
      directDownload: true,
      allowedUpdateIds: needed()
        .map((s) => s.id)
        .filter((id) => !options.allowed || options.allowed.includes(id)),
    }),
    install: async (ids: readonly string[]): Promise<CycleSummary> => {
      const now = needed().filter((s) => ids.includes(s.id));
      for (const s of now) installed.set(s.id, { rebootDone: !s.reboot });
      log.push(`install ${now.map((s) => s.id).join(',')}`);
      return {
        outcome: now.some((s) => s.reboot) ? 'reboot-required' : 'done',
        rebootRequired: now.some((s) => s.reboot),
        installed: now.map((s) => s.id),
        failed: [],
      } as unknown as CycleSummary;
    },
    lastHresult: async () => null,
    progress: async (p: Omit<ActionProgress, 'protocol' | 'at'>) => void progress.push(p),
    save: async (r: RunningAction | null) => void (saved = r),
    transient: (error: unknown) => (error as Error).message === 'server away',
    reboot: async () => {
      reboots++;
      for (const i of installed.values()) i.rebootDone = true;
    },
  };
  return { ports, installed, log, progress, saved: () => saved, reboots: () => reboots };
}

const action: AgentAction = { id: 'a1', action: 'install', createdAt: '2026-03-03T21:00:00Z' };
const signal = new AbortController().signal;
const last = (p: Omit<ActionProgress, 'protocol' | 'at'>[]) => p[p.length - 1]!;

test('SSU, CU, reboot, then .NET after the agent comes back: one action, three passes', async () => {
  const h = fakeHost(CHAIN);
  await runInstallAction(h.ports, action, null, signal);
  assert.deepEqual(
    h.log.filter((l) => l.startsWith('install')),
    ['install ssu', 'install cu'],
  );
  assert.equal(h.reboots(), 1);
  assert.equal(last(h.progress).phase, 'reboot', 'the action is still running across the reboot');
  assert.deepEqual(h.saved(), { action, nextPass: 3, installed: ['ssu', 'cu'] });

  // The agent starts again after the reboot and resumes where the action stood.
  await runInstallAction(h.ports, action, h.saved(), signal);
  assert.deepEqual(
    h.log.filter((l) => l.startsWith('install')),
    ['install ssu', 'install cu', 'install net'],
  );
  assert.deepEqual(last(h.progress), {
    state: 'succeeded',
    message: 'nothing allowed is left after 3 pass(es), 3 update(s) installed',
  });
  assert.equal(h.saved(), null, 'nothing left to resume');
  assert.ok(h.progress.some((p) => p.message === 'pass 2: installing KB2'));
});

test('a pass cut short by the server going away starts again; the action still ends succeeded', async () => {
  const h = fakeHost([{ id: 'ssu', kb: '1' }]);
  const install = h.ports.install;
  let calls = 0;
  h.ports.install = async (ids) => {
    if (calls++ === 0) throw new Error('server away');
    return install(ids);
  };
  await runInstallAction(h.ports, action, null, signal);
  assert.deepEqual(last(h.progress), {
    state: 'succeeded',
    message: 'nothing allowed is left after 1 pass(es), 1 update(s) installed',
  });
  assert.equal(h.progress.filter((p) => p.message === 'pass 1: installing KB1').length, 2, 'pass 1 ran twice');
});

test('the ring reboot policy never: the chain stops at the pending reboot and says so', async () => {
  const h = fakeHost(CHAIN, { reboot: 'never' });
  await runInstallAction(h.ports, action, null, signal);
  assert.equal(h.reboots(), 0);
  assert.equal(last(h.progress).state, 'succeeded');
  assert.match(
    last(h.progress).message ?? '',
    /after 2 pass\(es\).*a reboot is pending \(the ring reboot policy is never/,
  );
});

test('what the server does not allow stops the chain, and that is success', async () => {
  const h = fakeHost(CHAIN, { allowed: ['ssu'] });
  await runInstallAction(h.ports, action, null, signal);
  assert.deepEqual(last(h.progress), {
    state: 'succeeded',
    message: 'nothing allowed is left after 1 pass(es), 1 update(s) installed',
  });
});

test('an update that comes back after its install stops the action as a loop', async () => {
  const h = fakeHost([{ id: 'x', kb: '9', sticky: true }]);
  await runInstallAction(h.ports, action, null, signal);
  assert.equal(last(h.progress).state, 'failed');
  assert.match(last(h.progress).message ?? '', /^pass 2: KB9 installed in an earlier pass and needed again/);
});

test(`a chain longer than ${MAX_INSTALL_PASSES} passes stops failed, naming what is left`, async () => {
  const long: Spec[] = Array.from({ length: MAX_INSTALL_PASSES + 1 }, (_, i) => ({
    id: `u${i}`,
    kb: String(100 + i),
    ...(i > 0 ? { requires: `u${i - 1}` } : {}),
  }));
  const h = fakeHost(long);
  await runInstallAction(h.ports, action, null, signal);
  assert.equal(h.log.filter((l) => l.startsWith('install')).length, MAX_INSTALL_PASSES);
  assert.deepEqual(last(h.progress), {
    state: 'failed',
    message: `stopped after ${MAX_INSTALL_PASSES} passes with 1 allowed update(s) still needed: KB10${MAX_INSTALL_PASSES}`,
  });
});

test('installable: needed ∩ allowed ∩ named by the action; reboot after a pass per policy', () => {
  const scan = { needed: CHAIN.map(record) };
  assert.deepEqual(
    installable(scan, { allowedUpdateIds: ['SSU', 'cu'] }, undefined).map((u) => u.updateId),
    ['ssu', 'cu'],
  );
  assert.deepEqual(
    installable(scan, { allowedUpdateIds: ['ssu', 'cu'] }, ['CU']).map((u) => u.updateId),
    ['cu'],
  );
  const s = (outcome: CycleSummary['outcome'], rebootRequired: boolean, installed: string[]) => ({
    outcome,
    rebootRequired,
    installed,
  });
  const table: [AgentPolicy['reboot'], ReturnType<typeof s>, boolean][] = [
    ['if-required', s('reboot-required', true, ['cu']), true],
    ['if-required', s('done', false, ['ssu']), false],
    ['if-required', s('reboot-pending', false, []), true],
    ['always', s('done', false, ['ssu']), true],
    ['always', s('done', false, []), false],
    ['never', s('reboot-required', true, ['cu']), false],
  ];
  for (const [policy, summary, want] of table)
    assert.equal(rebootAfterPass(policy, summary), want, `${policy} after ${summary.outcome}`);
});
