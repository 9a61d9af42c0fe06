import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEvent } from '../wua/protocol.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = join(ROOT, 'examples/lab/patch-night.yaml');
/** The `lab` command alone, so this test does not depend on every other command compiling. */
const ENTRY = `
import { Command } from 'commander';
import { registerLabCommand } from './src/cli/lab-command.ts';
import { runProgram } from './src/cli/program.ts';
const program = new Command('patchline');
registerLabCommand(program);
await runProgram(program, ['node', 'patchline', ...process.argv.slice(1)]);
`;
const PROCESS_TIMEOUT_MS = 20_000;

function runCli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, '--', ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: PROCESS_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('patchline lab provider', () => {
  it('serves the protocol on stdio for a host of the example patch night and keeps its state', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-provider-cli-'));
    try {
      const hostDir = join(dir, 'hosts', 'app02');
      const requests = [
        { id: '1', type: 'rebootStatus' },
        {
          id: '2',
          type: 'search',
          criteria: "IsInstalled=0 and IsHidden=0 and Type='Software' and BrowseOnly=0",
          serverSelection: 'default',
        },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n');
      const { code, stdout, stderr } = await runCli(
        [
          'lab',
          'provider',
          '--scenario',
          EXAMPLE,
          '--host',
          'app02',
          '--dir',
          hostDir,
          '--upstream',
          'http://127.0.0.1:9',
        ],
        `${requests}\n`,
      );
      assert.equal(code, 0, stderr);
      const events = stdout.trim().split('\n').map(parseEvent);
      assert.equal(events[0]?.type, 'hello');
      const status = events.find((e) => e.type === 'result' && e.request === 'rebootStatus');
      assert.ok(
        status?.type === 'result' && status.request === 'rebootStatus' && status.data?.rebootRequired === true,
        'app02 starts with a pending reboot',
      );
      const search = events.find((e) => e.type === 'result' && e.request === 'search');
      assert.ok(search?.type === 'result' && search.request === 'search');
      assert.deepEqual(search.data?.updates.map((u) => u.kbs[0]).sort(), ['2267602', '5044444', '890830']);
      assert.ok(
        search.data?.updates.every((u) =>
          u.downloadUrls[0]?.startsWith('http://127.0.0.1:9/d/msdownload/update/software/'),
        ),
      );
      const state = JSON.parse(await readFile(join(hostDir, 'state.json'), 'utf8')) as { rebootPending: boolean };
      assert.equal(state.rebootPending, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 64 with UNKNOWN_HOST for a host the scenario does not have', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchline-provider-cli-'));
    try {
      const { code, stdout, stderr } = await runCli(
        ['lab', 'provider', '--scenario', EXAMPLE, '--host', 'nope', '--dir', dir, '--upstream', 'http://127.0.0.1:9'],
        '',
      );
      assert.equal(code, 64);
      assert.equal(stdout, '');
      assert.match(stderr, /UNKNOWN_HOST: host "nope" is not in/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
