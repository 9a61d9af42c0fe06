/** RunsRepo against a real SQLite file: a transition is saved whole, and a reopened store sees it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from './db.ts';
import { RunsRepo } from './runs-repo.ts';

const host = (phase: string, updates: { updateId: string; result: string; attempts: number }[] = []) => ({
  host: 'web01',
  phase,
  cycle: 1,
  reboots: 0,
  message: null,
  stateJson: JSON.stringify({ phase }),
  updates: updates.map((u) => ({ ...u, kb: '5000001', title: 'Update', hresult: null, cycle: 1, message: null })),
});

test('create, transition, finish, reopen: everything is there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchline-repo-'));
  try {
    const file = join(dir, 'state.sqlite');
    let store = await openStore(file);
    let repo = new RunsRepo(store.db);
    await repo.createRun(
      { id: 'r1', optionsJson: '{"mode":"install"}', startedAt: '2026-11-21T06:00:00.000Z' },
      [host('queued')],
      [{ host: null, at: 't', kind: 'run-started', cycle: null, seq: null, data: {} }],
    );
    await repo.saveTransition(
      'r1',
      host('running', [{ updateId: 'aaaa', result: 'failed', attempts: 1 }]),
      [{ host: 'web01', at: 't', kind: 'agent', cycle: 1, seq: 5, data: { kind: 'update-result' } }],
      't',
    );
    await repo.saveTransition(
      'r1',
      host('rebooting', [{ updateId: 'aaaa', result: 'installed', attempts: 2 }]),
      [],
      't',
    );
    await repo.setRunStatus('r1', { outcome: 'succeeded', finishedAt: 't2', exitCode: 0 });
    await store.close();

    store = await openStore(file);
    repo = new RunsRepo(store.db);
    assert.deepEqual(await repo.getRun('r1'), {
      id: 'r1',
      optionsJson: '{"mode":"install"}',
      startedAt: '2026-11-21T06:00:00.000Z',
      finishedAt: 't2',
      outcome: 'succeeded',
      exitCode: 0,
    });
    const hosts = await repo.getHosts('r1');
    assert.equal(hosts[0]?.phase, 'rebooting');
    assert.deepEqual(JSON.parse(hosts[0]!.stateJson), { phase: 'rebooting' });
    const updates = await repo.getUpdates('r1', 'web01');
    assert.deepEqual(
      updates.map((u) => [u.updateId, u.result, u.attempts]),
      [['aaaa', 'installed', 2]],
    );
    const events = await repo.getEvents('r1');
    assert.deepEqual(
      events.map((e) => e.kind),
      ['run-started', 'agent'],
    );
    assert.equal(events[1]?.seq, 5);
    assert.equal((await repo.listRuns()).length, 1);
    assert.equal(await repo.getRun('nope'), null);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing transition saves nothing of it (one transaction)', async () => {
  const store = await openStore(':memory:');
  try {
    const repo = new RunsRepo(store.db);
    await repo.createRun({ id: 'r1', optionsJson: '{}', startedAt: 't' }, [host('queued')], []);
    // An update row with a NULL title violates NOT NULL after the event and host rows were written.
    const bad = {
      ...host('running'),
      updates: [
        {
          updateId: 'x',
          kb: null,
          title: null as unknown as string,
          result: 'failed',
          hresult: null,
          attempts: 1,
          cycle: 1,
          message: null,
        },
      ],
    };
    await assert.rejects(
      repo.saveTransition('r1', bad, [{ host: 'web01', at: 't', kind: 'agent', cycle: 1, seq: 1, data: {} }], 't'),
    );
    assert.equal((await repo.getHosts('r1'))[0]?.phase, 'queued');
    assert.equal((await repo.getEvents('r1')).length, 0);
  } finally {
    await store.close();
  }
});
