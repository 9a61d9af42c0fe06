/**
 * The lab transport's pure parts: the agent's socket path (short enough for Linux, the same for
 * the scheduler that sets it and fetchLog that reads it, distinct per lab/run/host/cycle) and the
 * fallback log file name the agent uses. The transport against a live daemon is tested in
 * src/lab/daemon.test.ts and src/lab/daemon-launch.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { labLogFallbackPath, labPipePath, parseNdjsonEvents } from './lab.ts';

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const UNIX_SOCKET_PATH_MAX_BYTES = 107;

describe('labPipePath', () => {
  it('is short, even for a very long lab directory and run id', () => {
    const path = labPipePath(`/var/lib/${'deep/'.repeat(40)}lab`, 'r'.repeat(200), 'web01', 3);
    assert.ok(Buffer.byteLength(path) <= UNIX_SOCKET_PATH_MAX_BYTES, path);
  });

  it('is the same for the same cycle and differs for another lab, run, host or cycle', () => {
    const base = labPipePath('/lab', 'run-1', 'web01', 1);
    assert.equal(labPipePath('/lab/', 'run-1', 'web01', 1), base);
    for (const other of [
      labPipePath('/lab2', 'run-1', 'web01', 1),
      labPipePath('/lab', 'run-2', 'web01', 1),
      labPipePath('/lab', 'run-1', 'web02', 1),
      labPipePath('/lab', 'run-1', 'web01', 2),
    ]) {
      assert.notEqual(other, base);
    }
  });
});

describe('labLogFallbackPath', () => {
  it("names the file like the agent does, in the host's logs dir, with unsafe characters replaced", () => {
    assert.equal(
      labLogFallbackPath('/lab', { runId: 'r:1', host: 'web01', cycle: 2 }),
      '/lab/hosts/web01/logs/r_1-web01-2.jsonl',
    );
  });
});

describe('parseNdjsonEvents', () => {
  it('reads one event per line and skips blank lines', () => {
    const events = parseNdjsonEvents(
      '{"seq":1,"at":"x","kind":"rebooting"}\n\n{"seq":2,"at":"x","kind":"rebooting"}\n',
    );
    assert.deepEqual(
      events.map((e) => e.seq),
      [1, 2],
    );
  });
});
