/**
 * The `windows` transport against a fake executor that answers with transcripts (schtasks and
 * our PowerShell scripts, as Microsoft documents their output). It checks what the transport
 * sends — every line through the golden-tested builders, with /S and the host's address — and
 * what it makes of the answers. It says nothing about Windows itself: no Windows ran here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CycleRequest } from '../src/domain/agent-log.ts';
import { PatchlineError } from '../src/domain/errors.ts';
import { parseInventory } from '../src/transports/inventory.ts';
import { LaunchRefusedError, TransportError } from '../src/transports/transport.ts';
import { checkTaskXml } from './windows-task-schema.ts';
import type { CommandResult, WindowsExecutor } from '../src/transports/windows/executor.ts';
import { decodePowerShell } from '../src/transports/windows/powershell.ts';
import { decodeTaskXml } from '../src/transports/windows/task-xml.ts';
import { createWindowsTransport } from '../src/transports/windows/transport.ts';
import { nodeWindowsExecutor } from '../src/transports/windows/executor.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Answer = CommandResult | ((argv: readonly string[]) => CommandResult);
const ok = (stdout: string): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
const fail = (exitCode: number, stderr: string): CommandResult => ({ exitCode, stdout: '', stderr });

/** A command's key: `schtasks /Create`, or the first words of the PowerShell script's purpose. */
function keyOf(argv: readonly string[]): string {
  if (argv[0] === 'powershell.exe') {
    const script = decodePowerShell(argv[4]!);
    if (script.includes('LastBootUpTime')) return 'ps boot';
    if (script.includes('ServicingInProgress')) return 'ps servicing';
    if (script.includes("Name = 'node.exe'")) return 'ps find-agent';
    if (script.includes('Terminate')) return 'ps stop';
    if (script.includes('Win32_Process')) return 'ps process';
    return 'ps ?';
  }
  return `${argv[0]} ${argv[1]}`;
}

class FakeExecutor implements WindowsExecutor {
  readonly tempDir = 'C:\\Users\\svc-patchline\\AppData\\Local\\Temp';
  readonly calls: (readonly string[])[] = [];
  readonly files = new Map<string, Buffer>();
  readonly pipes = new Map<string, Buffer>();
  readonly removed: string[] = [];
  constructor(private readonly answers: Record<string, Answer[]>) {}
  async run(argv: readonly string[]): Promise<CommandResult> {
    this.calls.push(argv);
    const queue = this.answers[keyOf(argv)];
    const answer = queue && queue.length > 1 ? queue.shift()! : queue?.[0];
    if (answer === undefined) throw new Error(`the transcript has no answer for ${keyOf(argv)}`);
    return typeof answer === 'function' ? answer(argv) : answer;
  }
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    this.files.set(path, Buffer.from(data));
  }
  async readFile(path: string): Promise<Buffer | null> {
    return this.files.get(path) ?? null;
  }
  async readPipe(path: string): Promise<Buffer | null> {
    return this.pipes.get(path) ?? null;
  }
  async removeFile(path: string): Promise<void> {
    this.removed.push(path);
  }
}

const inventory = parseInventory(
  'hosts:\n  web01: { address: 10.0.0.11 }\n  web02: { address: 10.0.0.12 }\n',
  'servers.yaml',
);
const request: CycleRequest = {
  runId: 'r7',
  host: 'web01',
  cycle: 1,
  mode: 'install',
  reboot: 'if-required',
  filters: {} as CycleRequest['filters'],
  exclude: [],
  installedEarlier: [],
  serverSelection: 'default',
  installerBusyTimeoutSeconds: 600,
  logHandoverTimeoutSeconds: 300,
  pipePath: '\\\\.\\pipe\\patchline-r7-web01-1',
};
const signal = AbortSignal.timeout(60_000);
const TASK = '\\Patchline\\r7-web01-c1';
const statusRow = (status: string, result: number): string =>
  `"WEB01","${TASK}","N/A","${status}","Interactive/Background","N/A","${result}","Patchline"\r\n`;
const DELETED = ok(`SUCCESS: The scheduled task "${TASK}" was successfully deleted.\r\n`);

async function transportWith(answers: Record<string, Answer[]>, logged: string[] = []) {
  const executor = new FakeExecutor(answers);
  executor.files.set('\\\\files01\\patchline\\0.1.0\\manifest.json', Buffer.from('{}'));
  const transport = createWindowsTransport({
    executor,
    clientShare: '\\\\files01\\patchline',
    clientVersion: '0.1.0',
    inventory,
    sleep: async () => undefined,
    log: (m) => logged.push(m),
  });
  assert.deepEqual(await transport.resolveTargets(['web01']), ['web01']);
  return { executor, transport };
}

test('launch: request file on C$, UTF-16 task XML, schtasks /Create /Run /S <address>, agent PID found, task deleted', async () => {
  const { executor, transport } = await transportWith({
    'schtasks.exe /Create': [ok(`SUCCESS: The scheduled task "${TASK}" has successfully been created.\r\n`)],
    'schtasks.exe /Run': [ok(`SUCCESS: Attempted to run the scheduled task "${TASK}".\r\n`)],
    'ps find-agent': [ok('{"pids":[]}\r\n'), ok('{"pids":[4242]}\r\n')],
    'schtasks.exe /Query': [ok(statusRow('Running', 267009))],
    'schtasks.exe /Delete': [DELETED],
  });
  await transport.prepare('web01', {}, signal);
  assert.deepEqual(await transport.launch('web01', request, signal), { taskId: TASK, pid: 4242 });

  assert.deepEqual(executor.calls.map(keyOf), [
    'schtasks.exe /Create',
    'schtasks.exe /Run',
    'ps find-agent',
    'schtasks.exe /Query',
    'ps find-agent',
    'schtasks.exe /Delete',
  ]);
  for (const argv of executor.calls.filter((a) => a[0] === 'schtasks.exe'))
    assert.deepEqual(argv.slice(2, 4), ['/S', '10.0.0.11'], 'the address from the inventory');
  const requestFile = executor.files.get('\\\\10.0.0.11\\C$\\ProgramData\\Patchline\\requests\\r7-web01-1.json');
  assert.deepEqual(JSON.parse(requestFile!.toString()), request);
  const xmlPath = executor.calls[0]![executor.calls[0]!.indexOf('/XML') + 1]!;
  const xml = decodeTaskXml(executor.files.get(xmlPath)!);
  assert.deepEqual(checkTaskXml(xml), []);
  assert.match(xml, /<Command>\\\\files01\\patchline\\0\.1\.0\\node\.exe<\/Command>/);
  assert.match(xml, /--request C:\\ProgramData\\Patchline\\requests\\r7-web01-1\.json<\/Arguments>/);
  assert.deepEqual(executor.removed, [xmlPath], 'the local XML file is removed');
  assert.match(decodePowerShell(executor.calls[2]![4]!), /-ComputerName '10\.0\.0\.11'/);
});

test('launch refused by the scheduler: the HRESULT and its words reach the engine; the task is still deleted', async () => {
  const { executor, transport } = await transportWith({
    'schtasks.exe /Create': [fail(1, 'ERROR: Access is denied.\r\n')],
    'schtasks.exe /Delete': [fail(1, `ERROR: The specified task name "${TASK}" does not exist in the system.\r\n`)],
  });
  await assert.rejects(
    transport.launch('web01', request, signal),
    (e: unknown) =>
      e instanceof LaunchRefusedError &&
      e.hresult === '0x80070005' &&
      e.kind === 'refused' &&
      /Access is denied\. — the connector's account must be an administrator of web01/.test(e.message),
  );
  assert.deepEqual(executor.calls.map(keyOf), ['schtasks.exe /Create', 'schtasks.exe /Delete']);
});

test('launch to a host whose RPC does not answer is unreachable, not a refusal', async () => {
  const { transport } = await transportWith({
    'schtasks.exe /Create': [fail(1, 'ERROR: The RPC server is unavailable.\r\n')],
    'schtasks.exe /Delete': [fail(1, 'ERROR: The RPC server is unavailable.\r\n')],
  });
  await assert.rejects(
    transport.launch('web01', request, signal),
    (e: unknown) => e instanceof TransportError && e.kind === 'unreachable' && e.code === 'HOST_UNREACHABLE',
  );
});

test('a task that ended without an agent (node.exe unreadable from the share) is refused with its last result', async () => {
  const { transport } = await transportWith({
    'schtasks.exe /Create': [ok('SUCCESS\r\n')],
    'schtasks.exe /Run': [ok('SUCCESS\r\n')],
    'ps find-agent': [ok('{"pids":[]}')],
    'schtasks.exe /Query': [ok(statusRow('Ready', -2147024891))],
    'schtasks.exe /Delete': [DELETED],
  });
  await assert.rejects(
    transport.launch('web01', request, signal),
    (e: unknown) =>
      e instanceof LaunchRefusedError && e.hresult === '0x80070005' && /Domain Computers, read/.test(e.message),
  );
});

test('a status query that fails (a busy RPC) is asked again: the task may be running, and its agent appears', async () => {
  const logged: string[] = [];
  const { transport } = await transportWith(
    {
      'schtasks.exe /Create': [ok('SUCCESS\r\n')],
      'schtasks.exe /Run': [ok('SUCCESS\r\n')],
      'ps find-agent': [ok('{"pids":[]}'), ok('{"pids":[]}'), ok('{"pids":[]}'), ok('{"pids":[4242]}')],
      'schtasks.exe /Query': [
        fail(1, 'ERROR: The remote procedure call failed.\r\n'),
        fail(1, 'ERROR: The RPC server is unavailable.\r\n'),
        ok(statusRow('Running', 267009)),
      ],
      'schtasks.exe /Delete': [DELETED],
    },
    logged,
  );
  assert.deepEqual(await transport.launch('web01', request, signal), { taskId: TASK, pid: 4242 });
  assert.equal(logged.filter((m) => m.includes('asking again')).length, 1, 'said once');
});

test('a task the scheduler no longer knows, or will not show, is refused at once with its HRESULT', async () => {
  for (const [stderr, hresult] of [
    [`ERROR: The specified task name "${TASK}" does not exist in the system.\r\n`, '0x80070002'],
    ['ERROR: Access is denied.\r\n', '0x80070005'],
  ] as const) {
    const { executor, transport } = await transportWith({
      'schtasks.exe /Create': [ok('SUCCESS\r\n')],
      'schtasks.exe /Run': [ok('SUCCESS\r\n')],
      'ps find-agent': [ok('{"pids":[]}')],
      'schtasks.exe /Query': [fail(1, stderr)],
      'schtasks.exe /Delete': [DELETED],
    });
    await assert.rejects(
      transport.launch('web01', request, signal),
      (e: unknown) => e instanceof LaunchRefusedError && e.hresult === hresult && /lost task/.test(e.message),
    );
    assert.equal(executor.calls.filter((a) => keyOf(a) === 'schtasks.exe /Query').length, 1);
  }
});

test('an agent that never appears ends the launch after the confirmation window, not never', async () => {
  const { executor, transport } = await transportWith({
    'schtasks.exe /Create': [ok('SUCCESS\r\n')],
    'schtasks.exe /Run': [ok('SUCCESS\r\n')],
    'ps find-agent': [ok('{"pids":[]}')],
    'schtasks.exe /Query': [ok(statusRow('Ready', 267011))],
    'schtasks.exe /Delete': [DELETED],
  });
  await assert.rejects(
    transport.launch('web01', request, signal),
    (e: unknown) => e instanceof LaunchRefusedError && /no agent process appeared on web01 within 60 s/.test(e.message),
  );
  assert.equal(executor.calls.filter((a) => keyOf(a) === 'ps find-agent').length, 61);
});

test('probe: boot id and servicing through CIM; a silent host is unreachable; a refusal is an auth failure', async () => {
  const up = await transportWith({
    'ps boot': [ok('{"bootId":"134093796123456789"}\r\n')],
    'ps servicing': [
      ok('{"servicingInProgress":2,"rebootPending":true}\r\n'),
      ok('{"servicingInProgress":null,"rebootPending":false}\r\n'),
    ],
  });
  assert.deepEqual(await up.transport.probe('web01', signal), {
    reachable: true,
    bootId: '134093796123456789',
    servicingIdle: false,
  });
  assert.deepEqual(await up.transport.probe('web01', signal), {
    reachable: true,
    bootId: '134093796123456789',
    servicingIdle: true,
  });

  const down = await transportWith({
    'ps boot': [
      fail(
        1,
        'Get-CimInstance : WinRM cannot complete the operation. Verify that the specified computer name is valid, that the computer is accessible over the network...\r\n',
      ),
    ],
  });
  assert.deepEqual(await down.transport.probe('web01', signal), {
    reachable: false,
    bootId: null,
    servicingIdle: false,
  });

  const denied = await transportWith({ 'ps boot': [fail(1, 'Get-CimInstance : Access is denied. \r\n')] });
  await assert.rejects(
    denied.transport.probe('web01', signal),
    (e: unknown) => e instanceof TransportError && e.kind === 'auth',
  );

  const broken = await transportWith({ 'ps boot': [fail(1, 'The term Get-CimInstance is not recognized\r\n')] });
  await assert.rejects(
    broken.transport.probe('web01', signal),
    (e: unknown) => e instanceof TransportError && e.kind === 'internal' && e.exitCode === 70,
    'an unknown failure is not passed off as a host that is down',
  );
});

test("fetchLog: the agent's pipe through \\\\host\\pipe, else the file it left under C$, else null", async () => {
  const events = '{"kind":"cycle-started","seq":1}\r\n{"kind":"cycle-finished","seq":2}\r\n';
  const { executor, transport } = await transportWith({});
  executor.pipes.set('\\\\10.0.0.11\\pipe\\patchline-r7-web01-1', Buffer.from(events));
  assert.deepEqual(
    (await transport.fetchLog('web01', request, signal))?.map((e) => e.kind),
    ['cycle-started', 'cycle-finished'],
  );
  executor.pipes.clear();
  assert.equal(await transport.fetchLog('web01', request, signal), null);
  executor.files.set('\\\\10.0.0.11\\C$\\ProgramData\\Patchline\\logs\\r7-web01-1.jsonl', Buffer.from(events));
  assert.equal((await transport.fetchLog('web01', request, signal))?.length, 2);
});

test('isRunning: only our agent counts (a reused PID does not)', async () => {
  const { transport } = await transportWith({
    'ps process': [
      ok(
        '{"running":true,"commandLine":"\\\\\\\\files01\\\\patchline\\\\0.1.0\\\\node.exe patchline.mjs agent cycle --request x"}',
      ),
      ok('{"running":true,"commandLine":"C:\\\\Windows\\\\notepad.exe"}'),
      ok('{"running":false}'),
    ],
  });
  const launch = { taskId: TASK, pid: 4242 };
  assert.deepEqual(
    [
      await transport.isRunning('web01', launch, signal),
      await transport.isRunning('web01', launch, signal),
      await transport.isRunning('web01', launch, signal),
    ],
    [true, false, false],
  );
});

test('reboot: shutdown /m \\\\address; an already scheduled shutdown is cancelled and retried; a refusal is auth', async () => {
  const { executor, transport } = await transportWith({
    'shutdown.exe /r': [fail(1190, 'A system shutdown has already been scheduled.(1190)\r\n'), ok('')],
    'shutdown.exe /a': [ok('')],
  });
  await transport.reboot('web01');
  assert.deepEqual(
    executor.calls.map((a) => a.slice(0, 4).join(' ')),
    ['shutdown.exe /r /m \\\\10.0.0.11', 'shutdown.exe /a /m \\\\10.0.0.11', 'shutdown.exe /r /m \\\\10.0.0.11'],
  );
  const denied = await transportWith({ 'shutdown.exe /r': [fail(5, '10.0.0.11: Access is denied.(5)\r\n')] });
  await assert.rejects(
    denied.transport.reboot('web01'),
    (e: unknown) => e instanceof TransportError && e.kind === 'auth',
  );
});

test('prepare refuses a share without a client folder, naming the pack command', async () => {
  const executor = new FakeExecutor({});
  const transport = createWindowsTransport({
    executor,
    clientShare: '\\\\files01\\patchline',
    clientVersion: '0.1.0',
    inventory: null,
  });
  await assert.rejects(
    transport.prepare('web01', {}, signal),
    (e: unknown) =>
      e instanceof PatchlineError &&
      e.code === 'CLIENT_SHARE_EMPTY' &&
      /patchline client pack --node node\.exe --out \\\\files01\\patchline/.test(e.message),
  );
});

test('the real executor runs a program without a shell and reports its exit code; files round-trip (portable parts only)', async () => {
  const executor = nodeWindowsExecutor();
  const result = await executor.run(
    [
      process.execPath,
      '-e',
      'process.stdout.write(process.argv[1]); process.stderr.write("e"); process.exit(3)',
      'a & b "c"',
    ],
    signal,
  );
  assert.deepEqual(result, { exitCode: 3, stdout: 'a & b "c"', stderr: 'e' });
  await assert.rejects(executor.run(['/nonexistent/schtasks.exe'], signal), /ENOENT/);
  const dir = mkdtempSync(join(tmpdir(), 'pl-exec-'));
  await executor.writeFile(join(dir, 'sub', 'f.bin'), Buffer.from([1, 2]));
  assert.deepEqual([...(await executor.readFile(join(dir, 'sub', 'f.bin')))!], [1, 2]);
  assert.equal(await executor.readFile(join(dir, 'none')), null);
  assert.equal(await executor.readPipe(join(dir, 'no.sock'), signal), null);
});
