/**
 * The `windows` transport passes the transport contract (src/transports/contract.case.ts) against
 * a SIMULATED Windows: an executor that interprets exactly the argv the transport runs (schtasks
 * /S, powershell -EncodedCommand with -ComputerName, shutdown /m) and maps `\\host\C$\…` to a
 * directory per host. On `schtasks /Run` it starts the real agent (`patchline agent cycle` from
 * the sources, with the scripted fake WUA provider) on the request file the transport wrote, so
 * the log the contract fetches is the agent's own. What it cannot say: anything about Windows —
 * schtasks, CIM, SMB and SYSTEM are modelled here, not exercised.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInventory } from '../src/transports/inventory.ts';
import { runTransportContract } from '../src/transports/contract.case.ts';
import { splitArgv } from '../src/transports/windows/cmd-line.ts';
import type { CommandResult, WindowsExecutor } from '../src/transports/windows/executor.ts';
import { decodePowerShell } from '../src/transports/windows/powershell.ts';
import { decodeTaskXml } from '../src/transports/windows/task-xml.ts';
import { createWindowsTransport } from '../src/transports/windows/transport.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const ok = (stdout: string): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
const fail = (exitCode: number, stderr: string): CommandResult => ({ exitCode, stdout: '', stderr });

interface SimHost {
  /** LastBootUpTime as a FILETIME (beyond 2^53: a bigint). */
  bootId: bigint;
  readonly down: boolean;
  readonly refusesTasks: boolean;
  readonly tasks: Map<string, { arguments: string; state: 'ready' | 'running'; lastResult: number }>;
  readonly agents: Map<number, { child: ChildProcess; commandLine: string; exited: boolean }>;
}

/** A few Windows hosts, as far as the windows transport can see them. */
class SimulatedWindows implements WindowsExecutor {
  readonly tempDir: string;
  readonly hosts = new Map<string, SimHost>();
  constructor(
    readonly root: string,
    private readonly providerWorld: string,
  ) {
    this.tempDir = join(root, 'connector-temp');
    mkdirSync(this.tempDir, { recursive: true });
  }

  addHost(address: string, options: { down?: boolean; refusesTasks?: boolean } = {}): void {
    this.hosts.set(address, {
      bootId: 134_093_796_123_456_789n,
      down: options.down ?? false,
      refusesTasks: options.refusesTasks ?? false,
      tasks: new Map(),
      agents: new Map(),
    });
  }

  /** `\\addr\C$\x\y` → ROOT/addr/C/x/y; a target-local `C:\x\y` on `addr` likewise; else a connector path. */
  local(path: string, address?: string): string {
    const unc = /^\\\\([^\\]+)\\([A-Za-z])\$\\(.*)$/.exec(path);
    if (unc) return join(this.root, unc[1]!, unc[2]!.toUpperCase(), ...unc[3]!.split('\\'));
    const drive = /^([A-Za-z]):\\(.*)$/.exec(path);
    if (drive && address) return join(this.root, address, drive[1]!.toUpperCase(), ...drive[2]!.split('\\'));
    return path.replace(/\\/g, '/');
  }

  async run(argv: readonly string[]): Promise<CommandResult> {
    const [program, verb] = argv;
    if (program === 'schtasks.exe') return this.schtasks(verb!, argv);
    if (program === 'powershell.exe') return this.powershell(decodePowerShell(argv[4]!));
    if (program === 'shutdown.exe') {
      const host = this.hosts.get(argv[argv.indexOf('/m') + 1]!.replace(/^\\\\/, ''));
      if (!host || host.down) return fail(53, 'The network path was not found.(53)\r\n');
      if (verb === '/r') host.bootId += 600_000_000n; // back one minute later
      return ok('');
    }
    return fail(
      9009,
      `'${program}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n`,
    );
  }

  private schtasks(verb: string, argv: readonly string[]): CommandResult {
    const address = argv[argv.indexOf('/S') + 1]!;
    const name = argv[argv.indexOf('/TN') + 1]!;
    const host = this.hosts.get(address);
    if (!host || host.down) return fail(1, 'ERROR: The RPC server is unavailable.\r\n');
    if (host.refusesTasks) return fail(1, 'ERROR: Access is denied.\r\n');
    const task = host.tasks.get(name);
    switch (verb) {
      case '/Create': {
        const xml = decodeTaskXml(readFileSync(this.local(argv[argv.indexOf('/XML') + 1]!)));
        const args = /<Arguments>(.*)<\/Arguments>/
          .exec(xml)![1]!
          .replace(/&quot;/g, '"')
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&amp;/g, '&');
        host.tasks.set(name, { arguments: args, state: 'ready', lastResult: 267011 });
        return ok(`SUCCESS: The scheduled task "${name}" has successfully been created.\r\n`);
      }
      case '/Run': {
        if (!task) return fail(1, `ERROR: The specified task name "${name}" does not exist in the system.\r\n`);
        this.startAgent(address, host, task);
        return ok(`SUCCESS: Attempted to run the scheduled task "${name}".\r\n`);
      }
      case '/Query':
        if (!task) return fail(1, `ERROR: The specified task name "${name}" does not exist in the system.\r\n`);
        return ok(
          `"${address.toUpperCase()}","${name}","N/A","${task.state === 'running' ? 'Running' : 'Ready'}","Interactive/Background","N/A","${task.lastResult}","Patchline"\r\n`,
        );
      case '/Delete':
        if (!task) return fail(1, `ERROR: The specified task name "${name}" does not exist in the system.\r\n`);
        host.tasks.delete(name);
        return ok(`SUCCESS: The scheduled task "${name}" was successfully deleted.\r\n`);
      default:
        return fail(1, `ERROR: Invalid argument/option - '${verb}'.\r\n`);
    }
  }

  /** What the task would start: the agent, on the request file the transport put on C$. */
  private startAgent(
    address: string,
    host: SimHost,
    task: { arguments: string; state: string; lastResult: number },
  ): void {
    const args = splitArgv(task.arguments);
    const requestPath = args[args.indexOf('--request') + 1]!;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'agent', 'cycle', '--request', this.local(requestPath, address)],
      {
        cwd: REPO,
        stdio: 'ignore',
        env: {
          ...process.env,
          PATCHLINE_LOG_DIR: this.local('C:\\ProgramData\\Patchline\\logs', address),
          PATCHLINE_PROVIDER_CMD: JSON.stringify([
            process.execPath,
            '--import',
            'tsx',
            'test/agent-fake-provider-cli.ts',
            this.providerWorld,
          ]),
        },
      },
    );
    const agent = { child, commandLine: `node.exe patchline.mjs agent cycle --request ${requestPath}`, exited: false };
    host.agents.set(child.pid!, agent);
    task.state = 'running';
    task.lastResult = 267009;
    child.on('exit', (code) => {
      agent.exited = true;
      task.state = 'ready';
      task.lastResult = code ?? 1;
    });
  }

  private powershell(script: string): CommandResult {
    const address = /-ComputerName '([^']+)'/.exec(script)?.[1];
    const host = address === undefined ? undefined : this.hosts.get(address);
    if (!host || host.down)
      return fail(
        1,
        'Get-CimInstance : WinRM cannot complete the operation. Verify that the specified computer name is valid.\r\n',
      );
    if (script.includes('LastBootUpTime')) return ok(`{"bootId":"${host.bootId}"}\r\n`);
    if (script.includes('ServicingInProgress')) return ok('{"servicingInProgress":null,"rebootPending":false}\r\n');
    if (script.includes("Name = 'node.exe'")) {
      const needle = /\$needle = '([^']*)'/.exec(script)![1]!;
      const pids = [...host.agents]
        .filter(([, a]) => !a.exited && a.commandLine.toLowerCase().includes(needle))
        .map(([pid]) => pid);
      return ok(`{"pids":[${pids.join(',')}]}\r\n`);
    }
    const pid = Number(/ProcessId = (\d+)/.exec(script)?.[1]);
    const agent = host.agents.get(pid);
    if (script.includes('Terminate')) {
      if (!agent || agent.exited) return ok('{"terminated":false,"returnValue":-1}\r\n');
      agent.child.kill();
      return ok('{"terminated":true,"returnValue":0}\r\n');
    }
    if (script.includes('Win32_Process'))
      return ok(
        !agent || agent.exited
          ? '{"running":false}\r\n'
          : JSON.stringify({ running: true, commandLine: agent.commandLine }) + '\r\n',
      );
    return fail(1, 'The simulated Windows does not know this script\r\n');
  }

  async writeFile(path: string, data: Uint8Array): Promise<void> {
    const local = this.local(path);
    mkdirSync(join(local, '..'), { recursive: true });
    writeFileSync(local, data);
  }
  async readFile(path: string): Promise<Buffer | null> {
    try {
      return readFileSync(this.local(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
  async readPipe(): Promise<Buffer | null> {
    return null; // No named pipes here: the transport falls back to the file the agent left.
  }
  async removeFile(path: string): Promise<void> {
    rmSync(this.local(path), { force: true });
  }
  shutdown(): void {
    for (const host of this.hosts.values())
      for (const agent of host.agents.values()) if (!agent.exited) agent.child.kill('SIGKILL');
  }
}

/** Real time: the agent is a real process (a cold tsx start takes seconds on a busy machine). */
const EVENTUALLY_MS = 120_000;
const POLL_MS = 200;

runTransportContract('windows (simulated Windows executor, real agent)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pl-simwin-'));
  const world = join(root, 'world.json');
  writeFileSync(world, JSON.stringify({ updates: [] }));
  const executor = new SimulatedWindows(root, world);
  executor.addHost('10.0.0.11');
  executor.addHost('10.0.0.99', { down: true });
  executor.addHost('10.0.0.12', { refusesTasks: true });
  // The client share: only its manifest is looked at by prepare (the agent checks the rest on start).
  await executor.writeFile(join(root, 'share', '0.1.0', 'manifest.json'), Buffer.from('{}'));
  const inventory = parseInventory(
    'hosts:\n  web01: { address: 10.0.0.11 }\n  lost01: { address: 10.0.0.99 }\n  locked01: { address: 10.0.0.12 }\n',
    'servers.yaml',
  );
  const transport = createWindowsTransport({
    executor,
    clientShare: join(root, 'share'),
    clientVersion: '0.1.0',
    inventory,
  });
  return {
    transport,
    up: 'web01',
    down: 'lost01',
    refusing: 'locked01',
    eventually: async (what, check) => {
      const deadline = Date.now() + EVENTUALLY_MS;
      while (Date.now() < deadline) {
        if (await check()) return;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      throw new Error(`${what}: not within ${EVENTUALLY_MS / 1000} s`);
    },
    close: async () => {
      executor.shutdown();
      await transport.close();
    },
  };
});
