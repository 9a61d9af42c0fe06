/**
 * Engine: transport failures are classified, never swallowed (issue 9, "The engine's edge").
 * A host that is away is waited for; refused credentials or an unverifiable host key end that host
 * at once (no reboot-timeout wait); anything unclassified — a bug in a transport — stops the run
 * with exit 70 and its cause, instead of passing for an unreachable host (exit 3).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRun } from '../src/engine/run.ts';
import { PatchlineError } from '../src/domain/errors.ts';
import { TransportError } from '../src/transports/transport.ts';
import { FakeFleet } from './engine-fake-transport.ts';
import { DEFENDER, SSU, never, runOptions, testEnv } from './engine-helpers.ts';

/** Long enough that a test waiting it out would hit its own timeout instead of passing. */
const TEN_MINUTES_MS = 10 * 60_000;

for (const op of ['probe', 'launch', 'isRunning'] as const) {
  test(
    `a transport whose ${op} throws an unexpected error: exit 70 with the cause, not exit 3`,
    { timeout: 20_000 },
    async () => {
      const env = await testEnv();
      try {
        const bug = new TypeError(`Cannot read properties of undefined (reading 'bootId') in ${op}`);
        // web01's install takes a simulated minute: the engine asks whether its agent still runs.
        const fleet = new FakeFleet([
          { name: 'web01', updates: [SSU], stepMs: 60_000, throws: { op, error: bug } },
          { name: 'web02', updates: [DEFENDER], stepMs: 50 },
        ]);
        const error = await startRun(
          env.deps(fleet),
          runOptions(['web01', 'web02'], { rebootTimeoutMs: TEN_MINUTES_MS }),
          never,
        ).then(
          () => assert.fail('the run should stop on the internal error'),
          (e: unknown) => e,
        );
        assert.ok(error instanceof PatchlineError);
        assert.equal(error.exitCode, 70);
        assert.equal(error.code, 'ENGINE_FAILED');
        assert.match(
          error.message,
          new RegExp(
            `fake transport failed unexpectedly on web01 \\(${op === 'isRunning' ? 'is-running' : op}\\): Cannot read properties of undefined`,
          ),
        );
        // The cause chain keeps the transport's own error.
        const inner = (error.cause as Error).cause;
        assert.equal(inner, bug);
        const logged = env.events.find((e) => e.kind === 'transport-error');
        assert.ok(logged && logged.kind === 'transport-error');
        assert.equal(logged.failure, 'internal');
        assert.match(logged.cause ?? '', /TypeError: Cannot read properties of undefined/);
        assert.ok(
          !env.events.some((e) => e.kind === 'host-finished' && e.outcome === 'unreachable'),
          'nobody is called unreachable',
        );
      } finally {
        await env.cleanup();
      }
    },
  );
}

test(
  'refused credentials after a reboot: that host ends access-denied at once with the message; the other finishes; exit 3',
  { timeout: 20_000 },
  async () => {
    const env = await testEnv();
    try {
      const refused = new TransportError(
        'auth',
        'web01',
        'web01 refused user patch (publickey): check the key file for web01 in servers.yaml',
      );
      // Boot 2 is the one after the first cycle's reboot.
      const fleet = new FakeFleet([
        { name: 'web01', updates: [SSU], throws: { op: 'probe', error: refused, fromBoot: 2 } },
        { name: 'web02', updates: [SSU] },
      ]);
      const result = await startRun(
        env.deps(fleet),
        runOptions(['web01', 'web02'], { rebootTimeoutMs: TEN_MINUTES_MS }),
        never,
      );
      assert.equal(result.exitCode, 3);
      const [web01, web02] = result.report.hosts;
      assert.equal(web01?.outcome, 'access-denied');
      assert.match(web01?.message ?? '', /refused user patch \(publickey\): check the key file/);
      assert.equal(web02?.outcome, 'compliant');
      assert.equal(
        fleet.thrown.get('web01:probe'),
        1,
        'refused once, then left alone: no probing until the reboot timeout',
      );
      assert.ok(
        env.events.some((e) => e.host === 'web01' && e.kind === 'transport-error' && e.failure === 'auth'),
        'the refusal is in the log',
      );
    } finally {
      await env.cleanup();
    }
  },
);

test(
  'a host key that cannot be verified at launch: unreachable at once with what to fix, no cycle counted',
  { timeout: 20_000 },
  async () => {
    const env = await testEnv();
    try {
      const changed = new TransportError(
        'host-key',
        'web01',
        'the host key of web01 changed (known: SHA256:aaa, offered: SHA256:bbb); if the server was reinstalled, remove its line from known_hosts',
      );
      const fleet = new FakeFleet([{ name: 'web01', updates: [SSU], throws: { op: 'launch', error: changed } }]);
      const result = await startRun(env.deps(fleet), runOptions(['web01'], { rebootTimeoutMs: TEN_MINUTES_MS }), never);
      assert.equal(result.exitCode, 3);
      const host = result.report.hosts[0]!;
      assert.equal(host.outcome, 'unreachable');
      assert.equal(host.cycles, 0);
      assert.match(host.message ?? '', /host key of web01 changed \(known: SHA256:aaa, offered: SHA256:bbb\)/);
      assert.equal(fleet.calls.get('web01:launch'), 1, 'launched once, not retried');
    } finally {
      await env.cleanup();
    }
  },
);
