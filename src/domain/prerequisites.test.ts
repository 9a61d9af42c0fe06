import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockedByPrerequisites, type PrerequisiteCandidate } from './prerequisites.ts';
import type { UpdateReport } from './report.ts';
import type { UpdateRecord } from './update.ts';

const record = (updateId: string, kb: string, extra: Partial<UpdateRecord> = {}) =>
  ({ updateId, kbs: [kb], title: `Update KB${kb}`, classification: 'Security Updates', ...extra }) as UpdateRecord;
const entry = (updateId: string, kb: string, result: UpdateReport['result']): UpdateReport => ({
  updateId,
  kb,
  title: `Update KB${kb}`,
  result,
  hresult: null,
  message: null,
  attempts: 1,
  attemptResults: [],
});
const all = () => true;

test('an update whose prerequisite failed is listed as blocked, naming the prerequisite; the chain behind it too', () => {
  const listed = [entry('ssu', '1', 'failed'), entry('def', '9', 'installed')];
  const candidates: PrerequisiteCandidate[] = [
    { record: record('dotnet', '3'), requires: ['cu'] },
    { record: record('cu', '2'), requires: ['ssu'] },
  ];
  const added = blockedByPrerequisites(listed, candidates, all);
  assert.deepEqual(
    added.map((u) => [u.updateId, u.result, u.attempts]),
    [
      ['cu', 'blocked', 0],
      ['dotnet', 'blocked', 0],
    ],
  );
  assert.match(added[0]!.message!, /^Not offered: it requires KB1, which failed;/);
  assert.match(added[1]!.message!, /^Not offered: it requires KB2, which is blocked;/);
});

test('nothing is added when the prerequisite was installed, when the filters leave the update out, or when it is already listed', () => {
  const cu = { record: record('cu', '2'), requires: ['ssu'] };
  assert.deepEqual(blockedByPrerequisites([entry('ssu', '1', 'installed')], [cu], all), []);
  assert.deepEqual(
    blockedByPrerequisites([entry('ssu', '1', 'failed')], [cu], (u) => u.kbs[0] === '1'),
    [],
    '--kb 1 selects the SSU alone',
  );
  assert.deepEqual(blockedByPrerequisites([entry('ssu', '1', 'failed'), entry('cu', '2', 'blocked')], [cu], all), []);
});
