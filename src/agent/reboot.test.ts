import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { PatchlineError } from '../domain/errors.ts';
import { executeReboot, planReboot } from './reboot.ts';

describe('planReboot', () => {
  it('uses the lab control URL when both variables are set, on any platform', () => {
    assert.deepEqual(
      planReboot(
        { PATCHLINE_LAB_CONTROL_URL: 'http://127.0.0.1:4100/hosts/web01/', PATCHLINE_LAB_CONTROL_TOKEN: 't' },
        'win32',
      ),
      { kind: 'lab', url: 'http://127.0.0.1:4100/hosts/web01/reboot', token: 't' },
    );
  });
  it('uses shutdown.exe on Windows', () => {
    assert.deepEqual(planReboot({}, 'win32'), {
      kind: 'command',
      argv: ['shutdown.exe', '/r', '/t', '0', '/c', 'Patchline'],
    });
  });
  it('refuses elsewhere with REBOOT_UNAVAILABLE', () => {
    assert.throws(
      () => planReboot({ PATCHLINE_LAB_CONTROL_URL: 'http://x' }, 'linux'),
      (e: unknown) => e instanceof PatchlineError && e.code === 'REBOOT_UNAVAILABLE',
    );
  });
});

describe('executeReboot (lab)', () => {
  it('POSTs to the control URL with the bearer token, and reports a refusal', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      res.writeHead(seen.length === 1 ? 202 : 409).end('host is already rebooting');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const plan = planReboot(
        { PATCHLINE_LAB_CONTROL_URL: `http://127.0.0.1:${port}/hosts/web01`, PATCHLINE_LAB_CONTROL_TOKEN: 'tok' },
        'linux',
      );
      await executeReboot(plan);
      assert.deepEqual(seen, ['POST /hosts/web01/reboot Bearer tok']);
      await assert.rejects(
        executeReboot(plan),
        (e: unknown) =>
          e instanceof PatchlineError && e.code === 'REBOOT_FAILED' && /409 host is already rebooting/.test(e.message),
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  it('runs the Windows command and turns its failure into REBOOT_FAILED', async () => {
    const ran: string[][] = [];
    await executeReboot(
      { kind: 'command', argv: ['shutdown.exe', '/r'] },
      {
        run: async (argv) => {
          ran.push([...argv]);
        },
      },
    );
    assert.deepEqual(ran, [['shutdown.exe', '/r']]);
    await assert.rejects(
      executeReboot(
        { kind: 'command', argv: ['shutdown.exe'] },
        {
          run: async () => {
            throw new Error('Access is denied.(5)');
          },
        },
      ),
      /REBOOT_FAILED|Access is denied/,
    );
  });
});

describe('executeReboot (lab) when the daemon does not answer at first', () => {
  it('tries again on a new connection and succeeds; a 503 after an unanswered attempt means the reboot is on', async () => {
    let calls = 0;
    const flaky: typeof fetch = async () => {
      calls += 1;
      if (calls === 1) throw new TypeError('fetch failed');
      return new Response(calls === 2 ? '{"reachable":false}' : '', { status: calls === 2 ? 503 : 202 });
    };
    await executeReboot({ kind: 'lab', url: 'http://127.0.0.1:9/hosts/web01/reboot', token: 't' }, { fetch: flaky });
    assert.equal(calls, 2);
  });
  it('a first-attempt 503 is a refusal (the host was already down)', async () => {
    const down: typeof fetch = async () => new Response('{"reachable":false}', { status: 503 });
    await assert.rejects(
      executeReboot({ kind: 'lab', url: 'http://127.0.0.1:9/hosts/web01/reboot', token: 't' }, { fetch: down }),
      (e: unknown) => e instanceof PatchlineError && e.code === 'REBOOT_FAILED' && /503/.test(e.message),
    );
  });
});
