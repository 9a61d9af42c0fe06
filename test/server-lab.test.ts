/**
 * The newcomer's first server command, as a real process: `node bin/patchline.js server --lab
 * examples/lab/patch-night.yaml --data TMP --listen 127.0.0.1:0`. It prints the real URL and a
 * one-time admin login; signed in with it, the API shows every scenario host enrolled with a scan
 * whose applicable set is the lab's own (issue 7, behaviour 2); nothing is installed until the
 * README's calls allow the security updates for the pilot ring and install them — then the pilot
 * hosts end OK and the broad ring is untouched. SIGTERM stops it cleanly; the same --data resumes
 * the same lab (no duplicate hosts, the password is not printed again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { applicableUpdates } from '../src/lab/applicability.ts';
import { readHostState } from '../src/lab/host-state.ts';
import { loadScenario } from '../src/lab/scenario.ts';
import { until } from './support/until.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SCENARIO = 'examples/lab/patch-night.yaml';

interface Started {
  readonly child: ChildProcess;
  readonly banner: string;
  readonly url: string;
  output(): string;
}

/** Starts the CLI and resolves once its banner is complete (bounded), with the URL it printed. */
async function startLab(data: string): Promise<Started> {
  // A quick time scale: installs and reboots of the patch night take a fraction of a second.
  const child = spawn(
    process.execPath,
    [
      'bin/patchline.js',
      'server',
      '--lab',
      SCENARIO,
      '--data',
      data,
      '--listen',
      '127.0.0.1:0',
      '--lab-time-scale',
      '0.01',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => void (out += d.toString()));
  const banner = await new Promise<string>((done, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`the lab server printed no complete banner within 90 s; output:\n${out}`)),
      90_000,
    );
    const check = (): void => {
      if (!/Ctrl-C stops/.test(out)) return;
      clearTimeout(timer);
      done(out);
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => fail(new Error(`the lab server exited (${code}) before its banner:\n${out}`)));
  });
  const url = /console: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(banner)?.[1];
  assert.ok(url, `the banner names the console URL:\n${banner}`);
  assert.doesNotMatch(url, /:0$/, 'the real port, not 0');
  return { child, banner, url, output: () => out };
}

async function stopLab(s: Started): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = once(s.child, 'exit');
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 30_000);
  const [code] = await exited;
  clearTimeout(timer);
  assert.equal(code, 0, `SIGTERM stops the lab cleanly (exit 0); output:\n${s.output()}`);
}

/** A signed-in console session: cookie plus CSRF token, as the console uses the API. */
async function signIn(url: string, password: string) {
  const r = await fetch(`${url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'admin', password }),
  });
  assert.equal(r.status, 200, `sign-in with the printed login: ${await r.clone().text()}`);
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  const { csrfToken } = (await r.json()) as { csrfToken: string };
  return async <T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T> => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: { cookie, 'x-csrf-token': csrfToken, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path} → ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };
}

type Hosts = { hosts: { name: string; ring: string; lastScanAt: string | null }[]; total: number };
type Updates = { updates: { updateId: string; classification: string | null; applicability: string; state: string }[] };

test(
  'server --lab patch-night: printed login, every host reports what the lab says, the pilot ring patched through the API, resumed with --data',
  { timeout: 240_000 },
  async () => {
    const data = await mkdtemp(join(tmpdir(), 'patchline-server-lab-'));
    const scenario = await loadScenario(join(ROOT, SCENARIO));
    let lab: Started | undefined;
    try {
      lab = await startLab(data);
      const password = /sign in: +admin \/ (\S+)/.exec(lab.banner)?.[1];
      assert.ok(password, `the banner prints the admin login once:\n${lab.banner}`);
      const api = await signIn(lab.url, password);

      let hosts: Hosts = { hosts: [], total: 0 };
      await until(
        'every scenario host to enroll and report a scan',
        60_000,
        async () => {
          hosts = await api<Hosts>('GET', '/hosts');
          return hosts.total === scenario.hosts.length && hosts.hosts.every((h) => h.lastScanAt) ? true : undefined;
        },
        () => JSON.stringify(hosts.hosts.map((h) => [h.name, h.lastScanAt])),
      );
      for (const host of scenario.hosts) {
        const server = (await api<Updates>('GET', `/hosts/${host.name}/updates`)).updates
          .filter((u) => u.applicability === 'needed')
          .map((u) => u.updateId)
          .sort();
        const state = await readHostState(join(data, 'lab', 'hosts', host.name));
        const labSays = applicableUpdates(scenario, host, state!)
          .map((e) => e.updateId.toLowerCase())
          .sort();
        assert.deepEqual(server, labSays, `${host.name}: the server's applicable set is the lab's`);
      }

      // The README's calls: allow the security updates for the pilot ring, install them there now.
      await api('POST', '/rules', { action: 'allow', classifications: ['Security Updates'], rings: ['pilot'] });
      await api('POST', '/actions', { action: 'install', ring: 'pilot' });
      const pilot = hosts.hosts.filter((h) => h.ring === 'pilot').map((h) => h.name);
      assert.deepEqual(pilot.sort(), ['sql01', 'web01']);
      const seen = new Map<string, string>();
      for (const name of pilot) {
        await until(
          `${name} (pilot) to have every security update OK`,
          90_000,
          async () => {
            const security = (await api<Updates>('GET', `/hosts/${name}/updates`)).updates.filter(
              (u) => u.classification === 'Security Updates' && u.applicability !== 'superseded',
            );
            seen.set(name, security.map((u) => `${u.updateId.slice(0, 8)}:${u.state}`).join(' '));
            return security.length > 0 && security.every((u) => u.state === 'OK') ? true : undefined;
          },
          () => seen.get(name) ?? 'nothing',
        );
      }
      for (const host of scenario.hosts.filter((h) => !pilot.includes(h.name))) {
        const state = await readHostState(join(data, 'lab', 'hosts', host.name));
        assert.deepEqual(
          Object.keys(state!.installed).sort(),
          [...host.installed].sort(),
          `${host.name} (broad) got nothing: no rule allows it there`,
        );
      }
      await stopLab(lab);
      assert.match(lab.output(), /lab stopped/);

      // The same --data resumes the same lab: same hosts, same admin, no password printed again.
      lab = await startLab(data);
      assert.doesNotMatch(lab.banner, /sign in: +admin \/ /, 'the password is shown only at the first start');
      assert.match(lab.banner, /user passwd admin/, 'the banner says how to reset it');
      const again = await signIn(lab.url, password);
      const resumed = await again<Hosts>('GET', '/hosts');
      assert.equal(resumed.total, scenario.hosts.length, 'no duplicate hosts after a resume');
      await stopLab(lab);
      const log = await readFile(join(data, 'server.log'), 'utf8');
      assert.doesNotMatch(log, new RegExp(password.replace(/[-]/g, '\\-')), 'the password is never in the server log');
      // Requests are logged, but not each agent's check-ins and reports (a line per request at
      // 10,000 agents would drown the rest); enrollments are.
      const urls = log
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { req?: { url?: string }; msg?: string })
        .map((entry) => entry.req?.url ?? entry.msg ?? '');
      assert.ok(
        urls.some((u) => u.startsWith('/api/v1/hosts')),
        'the API requests are in the server log',
      );
      assert.ok(urls.includes('agent enrolled'), 'enrollments are in the server log');
      assert.deepEqual(
        urls.filter((u) => /^\/api\/v1\/agent\/(checkin|reports|policy|actions)/.test(u)),
        [],
        'agent check-ins, reports and progress are not logged one by one',
      );
    } finally {
      if (lab) lab.child.kill('SIGKILL');
      await rm(data, { recursive: true, force: true });
    }
  },
);
