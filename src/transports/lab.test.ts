/**
 * The lab transport's pure parts: the agent's socket path (short enough for Linux, the same for
 * the scheduler that sets it and fetchLog that reads it, distinct per lab/run/host/cycle) and the
 * fallback log file name the agent uses; and what a call does when the daemon's HTTP server resets
 * a connection or is gone (a real server on loopback). The transport against a live daemon is
 * tested in src/lab/daemon.test.ts and src/lab/daemon-launch.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createLabTransport, labLogFallbackPath, labPipePath, parseNdjsonEvents } from './lab.ts';

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

describe('a call to the lab daemon', () => {
  /** A daemon stand-in answering /status; `reset(n)` says whether its n-th request is reset (RST). */
  async function daemon(reset: (n: number) => boolean): Promise<{ server: Server; url: string; requests(): number }> {
    let n = 0;
    const server = createServer((req, res) => {
      if (reset(n++)) return req.socket.resetAndDestroy();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ reachable: true, bootId: 'b1', servicingIdle: true }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => n };
  }
  const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

  it('sends a request the daemon reset once more, and keeps a daemon that resets connections', async () => {
    const flaky = await daemon((n) => n === 0 || n >= 2);
    let connects = 0;
    const transport = createLabTransport({
      dir: '/nonexistent-lab',
      daemon: { connect: async () => (connects++, { url: flaky.url, token: 't' }), close: async () => {} },
    });
    try {
      const signal = new AbortController().signal;
      // The first request is reset (a kept-alive connection closed under it): sent again, answered.
      assert.deepEqual(await transport.probe('web01', signal), { reachable: true, bootId: 'b1', servicingIdle: true });
      assert.equal(flaky.requests(), 2);
      // Reset every time now: unreachable this time round — not an internal error, not a new daemon.
      assert.equal((await transport.probe('web01', signal)).reachable, false);
      assert.equal((await transport.probe('web01', signal)).reachable, false);
      assert.equal(connects, 1, 'a daemon that resets connections is alive: it is not looked for again');
    } finally {
      await close(flaky.server);
    }
  });

  it('looks for (or starts) the daemon again once nobody listens', async () => {
    const first = await daemon(() => false);
    const endpoints = [first.url];
    let connects = 0;
    const transport = createLabTransport({
      dir: '/nonexistent-lab',
      daemon: { connect: async () => ({ url: endpoints[connects++]!, token: 't' }), close: async () => {} },
    });
    const signal = new AbortController().signal;
    assert.equal((await transport.probe('web01', signal)).reachable, true);
    await close(first.server); // the daemon idled out
    assert.equal((await transport.probe('web01', signal)).reachable, false, 'refused: unreachable this time');
    const second = await daemon(() => false);
    endpoints.push(second.url);
    try {
      assert.equal((await transport.probe('web01', signal)).reachable, true);
      assert.equal(connects, 2);
    } finally {
      await close(second.server);
    }
  });
});
