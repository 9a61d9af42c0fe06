/**
 * The end-of-cycle log server (docs/internals.md §4): listens on the cycle's pipe path — a named
 * pipe `\\.\pipe\…` on Windows, a Unix socket elsewhere (node:net handles both) — and gives every
 * reader the whole log as NDJSON, then closes. The log counts as taken once a reader received
 * all of it: our end was flushed and the reader closed its side without an error.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import type { AgentEvent } from '../../domain/agent-log.ts';

export interface LogPipeServer {
  /** Resolves once listening; rejects when the path cannot be served (too long, in use …). */
  readonly listening: Promise<void>;
  /** Resolves when the first reader took the whole log. Never rejects. */
  readonly taken: Promise<void>;
  /** Stops listening (and removes the Unix socket). Idempotent. */
  close(): Promise<void>;
}

/**
 * @example
 *   const server = serveLogOnPipe('\\\\.\\pipe\\patchline-r1-web01-1', () => log.events());
 *   await Promise.race([server.taken, timeout]);
 *   await server.close();
 */
export function serveLogOnPipe(
  path: string,
  events: () => readonly AgentEvent[],
  platform: NodeJS.Platform = process.platform,
): LogPipeServer {
  let markTaken!: () => void;
  const taken = new Promise<void>((resolve) => {
    markTaken = resolve;
  });
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let flushed = false;
    socket.on('error', () => socket.destroy()); // a reader that went away early did not take the log
    socket.on('close', (hadError) => {
      sockets.delete(socket);
      if (flushed && !hadError) markTaken();
    });
    const body = events()
      .map((e) => `${JSON.stringify(e)}\n`)
      .join('');
    socket.end(body, () => {
      flushed = true;
    });
  });
  const listening = new Promise<void>((resolve, reject) => {
    try {
      if (platform !== 'win32') removeStaleSocket(path);
    } catch (error) {
      reject(error);
      return;
    }
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | null = null;
  return {
    listening,
    taken,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

/** A socket file left by an agent that was killed would make listen fail with EADDRINUSE. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
