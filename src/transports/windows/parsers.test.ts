/**
 * The parsers against transcripts of what schtasks and our PowerShell scripts print. The schtasks
 * texts follow Microsoft's documentation (schtasks-query.md column set; the "ERROR: <system
 * message>" form; Task Scheduler error constants); they were not captured on a Windows machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  agentTaskName,
  hresultText,
  isSchtasksSuccess,
  judgeStartQuery,
  parseCsvLine,
  parseSchtasksError,
  parseTaskStatus,
} from './schtasks.ts';
import { parseAgentPids, parseAgentProcess, parseBootId, parseFileChunk, parseServicingState } from './powershell.ts';
import { classifyShutdownExit, shutdownRebootArgv } from './shutdown.ts';

const NAME = '\\Patchline\\r7-web01-c1';
/** One verbose CSV row of `schtasks /Query /TN … /V /FO CSV /NH` for a task without a trigger. */
const row = (status: string, lastResult: string): string =>
  `"WEB01","${NAME}","N/A","${status}","Interactive/Background","12/5/2026 9:01:02 PM","${lastResult}","Patchline","\\\\files01\\patchline\\0.1.0\\node.exe \\\\files01\\patchline\\0.1.0\\patchline.mjs agent cycle --request C:\\ProgramData\\Patchline\\requests\\r7-web01-1.json","\\\\files01\\patchline\\0.1.0","Patchline run r7, host web01, cycle 1","Enabled","Disabled","","SYSTEM","Disabled","04:00:00","Scheduling data is not available in this format.","On demand only","N/A","N/A","N/A","N/A","N/A","N/A","N/A","N/A","N/A"`;

test('task status: state and last result by column position', () => {
  const table: ReadonlyArray<readonly [string, string, string, string]> = [
    ['Ready', '267011', 'ready', '0x00041303'], // SCHED_S_TASK_HAS_NOT_RUN: registered, not started yet
    ['Running', '267009', 'running', '0x00041301'], // SCHED_S_TASK_RUNNING
    ['Ready', '0', 'ready', '0x00000000'], // the agent exited 0
    ['Ready', '1', 'ready', '0x00000001'], // the agent exited 1 (log hand-over or reboot failed)
    ['Ready', '-2147024894', 'ready', '0x80070002'], // node.exe not found on the share
    ['Queued', '267045', 'queued', '0x00041325'],
    ['Wird ausgeführt', '267009', 'unknown', '0x00041301'], // another display language: the result still reads
  ];
  for (const [status, result, state, hresult] of table) {
    const parsed = parseTaskStatus(`\r\n${row(status, result)}\r\n`, NAME);
    assert.deepEqual(parsed && { state: parsed.state, lastResult: parsed.lastResult, statusText: parsed.statusText }, {
      state,
      lastResult: hresult,
      statusText: status,
    });
  }
  assert.equal(parseTaskStatus(row('Ready', '0'), '\\Patchline\\other'), null, 'a row of another task is not ours');
  assert.equal(parseTaskStatus(row('Ready', 'N/A'), NAME)?.lastResult, null);
});

test('CSV fields with commas and doubled quotes', () => {
  assert.deepEqual(parseCsvLine('"a,b","say ""hi""",""'), ['a,b', 'say "hi"', '']);
  assert.deepEqual(parseCsvLine('plain,"q"'), ['plain', 'q']);
});

test("schtasks errors: the scheduler's words become an HRESULT and a kind", () => {
  const table: ReadonlyArray<readonly [string, string | null, string]> = [
    ['ERROR: Access is denied.\r\n', '0x80070005', 'access-denied'],
    ['ERROR: The user name or password is incorrect.\r\n', '0x8007052E', 'access-denied'],
    ['ERROR: The network path was not found.\r\n', '0x80070035', 'unreachable'],
    ['ERROR: The RPC server is unavailable.\r\n', '0x800706BA', 'unreachable'],
    [`ERROR: The specified task name "${NAME}" does not exist in the system.\r\n`, '0x80070002', 'not-found'],
    ['ERROR: The system cannot find the file specified.\r\n', '0x80070002', 'not-found'],
    [
      'ERROR: The task XML contains a value which is incorrectly formatted or out of range.\r\n(26,8):ExecutionTimeLimit:4 hours\r\n',
      '0x80041318',
      'bad-task',
    ],
    ['ERROR: The task XML is malformed.\r\n(1,1)::ERROR: incorrect document syntax\r\n', '0x8004131A', 'bad-task'],
    ['ERROR: An instance of this task is already running.\r\n', '0x8004131F', 'already-running'],
    ['FEHLER: Zugriff verweigert\r\n', null, 'other'],
  ];
  for (const [stderr, hresult, kind] of table) {
    const parsed = parseSchtasksError(stderr);
    assert.deepEqual([parsed.hresult, parsed.kind], [hresult, kind], stderr);
    assert.ok(parsed.message.length > 0);
  }
  assert.match(
    parseSchtasksError(
      'ERROR: The task XML contains a value which is incorrectly formatted or out of range.\r\n(26,8):ExecutionTimeLimit:4 hours\r\n',
    ).message,
    /\(26,8\):ExecutionTimeLimit:4 hours/,
    'the position line is kept for the message',
  );
  assert.equal(parseSchtasksError('').message, '(schtasks printed nothing)');
});

test('confirming a launch: only the scheduler saying the task is gone, or failed, ends it; a failed query asks again', () => {
  const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });
  const err = (stderr: string, code = 1) => ({ code, stdout: '', stderr });
  const table: ReadonlyArray<readonly [string, { code: number; stdout: string; stderr: string }, string, string?]> = [
    ['just created', ok(row('Ready', '267011')), 'waiting'],
    ['running', ok(row('Running', '267009')), 'waiting'],
    ['queued', ok(row('Queued', '267045')), 'waiting'],
    ['the agent already ended well', ok(row('Ready', '0')), 'waiting'],
    ['node.exe not found on the share', ok(row('Ready', '-2147024894')), 'failed', '0x80070002'],
    [
      'the task is gone',
      err(`ERROR: The specified task name "${NAME}" does not exist in the system.\r\n`),
      'lost',
      '0x80070002',
    ],
    ['not allowed to look', err('ERROR: Access is denied.\r\n'), 'lost', '0x80070005'],
    // The query failed, not the task: it was created and run, and its agent may well be running.
    ['a busy scheduler', err('ERROR: The remote procedure call failed.\r\n'), 'unanswered'],
    ['the scheduler restarting', err('ERROR: The Task Scheduler service is not running.\r\n'), 'unanswered'],
    ['an error in another language', err('FEHLER: Der Remoteprozeduraufruf ist fehlgeschlagen.\r\n'), 'unanswered'],
    ['a shell that did not run schtasks', err('lab: fetch failed\r\n', 255), 'unanswered'],
    ['no row for our task', ok(row('Running', '267009').replace(NAME, '\\Patchline\\other')), 'unanswered'],
  ];
  for (const [what, result, kind, hresult] of table) {
    const verdict = judgeStartQuery(result, NAME);
    assert.equal(verdict.kind, kind, what);
    if (hresult !== undefined) assert.equal('hresult' in verdict ? verdict.hresult : null, hresult, what);
    if (verdict.kind === 'unanswered' || verdict.kind === 'lost') assert.ok(verdict.message.length > 0, what);
  }
  assert.match(
    (judgeStartQuery(err('ERROR: The remote procedure call failed.\r\n'), NAME) as { message: string }).message,
    /The remote procedure call failed\. \(exit 1\)/,
    "the scheduler's words and the exit code are kept for the operator's note",
  );
});

test('schtasks success lines', () => {
  assert.ok(isSchtasksSuccess(`SUCCESS: The scheduled task "${NAME}" has successfully been created.\r\n`));
  assert.ok(isSchtasksSuccess(`SUCCESS: Attempted to run the scheduled task "${NAME}".\r\n`));
  assert.ok(
    !isSchtasksSuccess(
      'WARNING: The task was created but may not run because the account information could not be set.\r\n',
    ),
  );
});

test('task names: one per host cycle, without characters the scheduler refuses', () => {
  assert.equal(agentTaskName({ runId: 'r7', host: 'web01', cycle: 2 }), '\\Patchline\\r7-web01-c2');
  assert.equal(agentTaskName({ runId: 'r/7', host: 'db:01', cycle: 1 }), '\\Patchline\\r_7-db_01-c1');
  assert.equal(hresultText(-2147024891), '0x80070005');
});

test("boot id, servicing state, file chunks and agent processes from the scripts' JSON lines", () => {
  assert.equal(parseBootId('{"bootId":"134093796123456789"}\r\n'), '134093796123456789');
  assert.throws(() => parseBootId('Get-CimInstance : Access denied\r\n'), /boot id: unexpected PowerShell output/);
  assert.deepEqual(parseServicingState('{"servicingInProgress":null,"rebootPending":false}'), {
    servicingInProgress: null,
    rebootPending: false,
    idle: true,
  });
  assert.deepEqual(parseServicingState('{"servicingInProgress":1,"rebootPending":true}'), {
    servicingInProgress: 1,
    rebootPending: true,
    idle: true,
  });
  assert.deepEqual(parseServicingState('{"servicingInProgress":2,"rebootPending":true}'), {
    servicingInProgress: 2,
    rebootPending: true,
    idle: false,
  });
  assert.throws(() => parseServicingState('{"servicingInProgress":"2"}'), /servicing state/);
  const chunk = parseFileChunk(
    `{"size":120,"offset":100,"data":"${Buffer.from('{"type":"x"}\n').toString('base64')}"}\r\n`,
  );
  assert.deepEqual([chunk.size, chunk.offset, chunk.data.toString()], [120, 100, '{"type":"x"}\n']);
  assert.equal(parseFileChunk('{"size":-1}').size, -1);
  assert.deepEqual(parseAgentProcess('{"running":false}'), { running: false });
  assert.deepEqual(parseAgentProcess('{"commandLine":"node.exe patchline.mjs agent cycle","running":true}'), {
    running: true,
    commandLine: 'node.exe patchline.mjs agent cycle',
  });
  assert.deepEqual(parseAgentPids('{"pids":[4242]}'), [4242]);
  assert.deepEqual(parseAgentPids('{"pids":4242}'), [4242], 'PowerShell 5.1 unrolls one-element arrays');
  assert.deepEqual(parseAgentPids('{"pids":[]}'), []);
});

test('shutdown: its exit codes decide whether to retry, wait or fail', () => {
  assert.deepEqual(shutdownRebootArgv('x', 'web01'), [
    'shutdown.exe',
    '/r',
    '/m',
    '\\\\web01',
    '/t',
    '0',
    '/d',
    'p:2:17',
    '/c',
    'x',
  ]);
  assert.deepEqual([0, 1190, 1115, 5].map(classifyShutdownExit), [
    'started',
    'already-scheduled',
    'in-progress',
    'failed',
  ]);
  assert.throws(() => shutdownRebootArgv('x'.repeat(513)), /512 characters/);
});

test('the registered definition (schtasks /Query /XML): no trigger, SYSTEM, our command — or a trigger someone added', async () => {
  const { agentTaskXml } = await import('./agent-launch.ts');
  const { parseRegisteredTask } = await import('./schtasks.ts');
  // What schtasks prints is the definition the scheduler keeps (it adds <Date>, <URI>, …).
  const printed = agentTaskXml({
    clientDir: '\\\\files01\\patchline\\0.1.0',
    requestPath: 'C:\\ProgramData\\Patchline\\requests\\r7-web01-1.json',
    description: 'x & y',
  }).replace(
    '<Author>Patchline</Author>',
    '<Date>2026-12-05T21:00:00</Date><Author>Patchline</Author><URI>\\Patchline\\r7-web01-c1</URI>',
  );
  assert.deepEqual(parseRegisteredTask(printed), {
    hasTriggers: false,
    userId: 'S-1-5-18',
    runLevel: 'HighestAvailable',
    command: '\\\\files01\\patchline\\0.1.0\\node.exe',
    arguments:
      '\\\\files01\\patchline\\0.1.0\\patchline.mjs agent cycle --request C:\\ProgramData\\Patchline\\requests\\r7-web01-1.json',
  });
  assert.equal(
    parseRegisteredTask(
      printed.replace(
        '<Settings>',
        '<Triggers><TimeTrigger><StartBoundary>2026-12-05T21:01:00</StartBoundary></TimeTrigger></Triggers><Settings>',
      ),
    ).hasTriggers,
    true,
  );
  assert.equal(parseRegisteredTask(printed.replace('<Settings>', '<Triggers /><Settings>')).hasTriggers, false);
  assert.throws(
    () => parseRegisteredTask('ERROR: The system cannot find the file specified.\r\n'),
    /printed no task definition/,
  );
});
