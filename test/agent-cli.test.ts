/**
 * `patchline agent cycle` end to end, as the task scheduler starts it: a real process, a fake
 * provider process named by PATCHLINE_PROVIDER_CMD, a callback server and a lab reboot endpoint
 * on 127.0.0.1. Checks the JSON lines, the exit codes, SIGTERM, and that the reboot comes only
 * after the connector acknowledged the whole log.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentEvent, CycleRequest } from '../src/domain/agent-log.ts';
import { record } from './agent-fake-provider.ts';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];
const PROVIDER = [process.execPath, '--import', 'tsx', 'test/agent-fake-provider-cli.ts'];
const TOKEN = 'cycle-token-e2e';
/** Generous: two tsx processes start cold under a loaded CI machine. */
const PROCESS_TIMEOUT_MS = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  events: AgentEvent[];
}

/** Starts the agent; `onEvent` sees each JSON line as it arrives (e.g. to send SIGTERM). */
function runAgent(
  args: string[],
  env: NodeJS.ProcessEnv,
  onEvent?: (e: AgentEvent, kill: (s: NodeJS.Signals) => void) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `agent did not finish within ${PROCESS_TIMEOUT_MS} ms; its output so far:\n${stdout.slice(-1500)}\nstderr:\n${stderr.slice(-1500)}`,
        ),
      );
    }, PROCESS_TIMEOUT_MS);
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') onEvent?.(JSON.parse(line) as AgentEvent, (s) => child.kill(s));
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const events = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as AgentEvent);
      resolve({ code, stdout, stderr, events });
    });
  });
}

// The cases run concurrently: each is one cold `node --import tsx` start (seconds on a busy box).
describe('patchline agent cycle (process)', { concurrency: true }, () => {
  let dir = '';
  let server: Server;
  let base = '';
  /** What the connector-side endpoints of each case saw, in order: "ack N" and "reboot". */
  const seen = new Map<string, string[]>();
  const acked = new Map<string, Set<number>>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-agent-cli-'));
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
        const [, name = '', ...rest] = (req.url ?? '').split('/');
        const path = `/${rest.join('/')}`;
        const log = seen.get(name) ?? [];
        seen.set(name, log);
        if (path === '/events') {
          const have = acked.get(name) ?? new Set<number>();
          acked.set(name, have);
          for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
            if (line.trim() !== '') have.add((JSON.parse(line) as AgentEvent).seq);
          }
          let ack = 0;
          while (have.has(ack + 1)) ack++;
          log.push(`ack ${ack}`);
          res.writeHead(200).end(JSON.stringify({ ackSeq: ack }));
        } else if (path === '/hosts/web01/reboot') {
          log.push('reboot');
          res.writeHead(202).end('{}');
        } else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    base = `http://127.0.0.1:${address.port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  function files(name: string, updates: object[], overrides: Partial<CycleRequest> = {}) {
    const worldPath = join(dir, `${name}-world.json`);
    writeFileSync(worldPath, JSON.stringify({ updates }));
    const request: CycleRequest = {
      runId: 'r-e2e',
      host: 'web01',
      cycle: 1,
      mode: 'install',
      reboot: 'if-required',
      filters: {},
      exclude: [],
      installedEarlier: [],
      serverSelection: 'default',
      installerBusyTimeoutSeconds: 60,
      logHandoverTimeoutSeconds: 20,
      ...overrides,
    };
    const requestPath = join(dir, `${name}-request.json`);
    writeFileSync(requestPath, JSON.stringify(request));
    const env = {
      PATCHLINE_PROVIDER_CMD: JSON.stringify([...PROVIDER, worldPath]),
      PATCHLINE_LAB_CONTROL_URL: `${base}/${name}/hosts/web01`,
      PATCHLINE_LAB_CONTROL_TOKEN: TOKEN,
      PATCHLINE_LOG_DIR: join(dir, `${name}-logs`),
    };
    return { requestPath, env, callbackUrl: `${base}/${name}/events`, seen: () => seen.get(name) ?? [] };
  }

  it('runs a cycle, prints JSON lines, and reboots only after the connector acknowledged the whole log', async () => {
    const {
      requestPath,
      env,
      callbackUrl,
      seen: log,
    } = files('reboot', [{ record: record('5060001'), needsReboot: true }]);
    const request = JSON.parse(readFileSync(requestPath, 'utf8')) as CycleRequest;
    writeFileSync(requestPath, JSON.stringify({ ...request, callback: { url: callbackUrl, token: TOKEN } }));
    const run = await runAgent(['agent', 'cycle', '--request', requestPath], env);
    assert.equal(run.code, 0, run.stderr);
    const kinds = run.events.map((e) => e.kind).filter((k) => k !== 'progress');
    assert.deepEqual(kinds.slice(0, 3), ['cycle-started', 'preflight', 'scan-result']);
    assert.deepEqual(kinds.slice(-2), ['cycle-finished', 'rebooting']);
    const finished = run.events.find((e) => e.kind === 'cycle-finished');
    assert.ok(finished?.kind === 'cycle-finished' && finished.outcome === 'reboot-required' && finished.willReboot);
    const last = run.events.at(-1)?.seq ?? 0;
    const seen = log();
    assert.equal(seen.at(-1), 'reboot');
    assert.ok(seen.includes(`ack ${last}`) && seen.indexOf(`ack ${last}`) < seen.indexOf('reboot'), seen.join(', '));
    assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN), 'the token is never printed');
  });

  it('exits 0 with outcome done and no reboot when nothing needs one', async () => {
    const { requestPath, env, seen: log } = files('done', [{ record: record('5060002') }]);
    const run = await runAgent(['agent', 'cycle', '--request', requestPath], env);
    assert.equal(run.code, 0, run.stderr);
    const finished = run.events.at(-1);
    assert.ok(finished?.kind === 'cycle-finished' && finished.outcome === 'done' && !finished.willReboot);
    assert.ok(!log().includes('reboot'));
    assert.match(run.stderr, /cycle log written to .*r-e2e-web01-1\.jsonl/);
  });

  it('aborts on SIGTERM: the running install is aborted and the cycle ends "aborted", exit 0', async () => {
    const { requestPath, env } = files('abort', [{ record: record('5060003'), hangs: true }], {
      logHandoverTimeoutSeconds: 0,
    });
    let signalled = false;
    const run = await runAgent(['agent', 'cycle', '--request', requestPath], env, (e, kill) => {
      if (!signalled && e.kind === 'progress' && e.phase === 'install') {
        signalled = true;
        kill('SIGTERM');
      }
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(signalled);
    const finished = run.events.at(-1);
    assert.ok(finished?.kind === 'cycle-finished' && finished.outcome === 'aborted', JSON.stringify(finished));
    assert.ok(
      run.events.some((e) => e.kind === 'update-result' && e.phase === 'install' && e.resultCode === 'aborted'),
    );
  });

  it('refuses a bad request file with exit 64 and says which field', async () => {
    const path = join(dir, 'bad-request.json');
    writeFileSync(
      path,
      JSON.stringify({
        runId: 'r',
        host: 'web01',
        cycle: 1,
        mode: 'patch',
        reboot: 'if-required',
        filters: {},
        exclude: [],
        installedEarlier: [],
        serverSelection: 'default',
        installerBusyTimeoutSeconds: 60,
        logHandoverTimeoutSeconds: 1,
      }),
    );
    const run = await runAgent(['agent', 'cycle', '--request', path], {});
    assert.equal(run.code, 64);
    assert.match(run.stderr, /BAD_CYCLE_REQUEST.*\/mode/);
    assert.equal(run.stdout, '');
  });
});
