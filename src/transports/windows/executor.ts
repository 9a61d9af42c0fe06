/**
 * The one place the `windows` transport touches the machine: running a program (schtasks.exe,
 * powershell.exe, shutdown.exe — no shell) and reading/writing files and pipes by path (UNC
 * paths on Windows). `nodeWindowsExecutor` is the real one, for a connector running on Windows;
 * tests use a fake that answers with transcripts. Not run on Windows by the project's tests.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface WindowsExecutor {
  /** Runs argv[0] with the rest as its arguments (CreateProcess quoting by Node), to completion. */
  run(argv: readonly string[], signal: AbortSignal): Promise<CommandResult>;
  /** Writes a file, creating its directory (a local temp file, or `\\host\C$\…` on a target). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** The file's bytes, or null when it does not exist. */
  readFile(path: string): Promise<Buffer | null>;
  /** Everything a named pipe (`\\host\pipe\name`) sends until it closes; null when nobody serves it. */
  readPipe(path: string, signal: AbortSignal): Promise<Buffer | null>;
  removeFile(path: string): Promise<void>;
  /** A directory on the connector for task XML files. */
  readonly tempDir: string;
}

/** Longest a single command may run (schtasks /S to a dead host waits for RPC timeouts). */
const COMMAND_TIMEOUT_MS = 120_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** The executor for a connector running on Windows. */
export function nodeWindowsExecutor(): WindowsExecutor {
  return {
    tempDir: tmpdir(),
    run(argv, signal) {
      return new Promise((resolve, reject) => {
        execFile(
          argv[0]!,
          argv.slice(1) as string[],
          { signal, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true },
          (error, stdout, stderr) => {
            if (error && typeof (error as NodeJS.ErrnoException).code !== 'number') {
              // Not an exit code: the program could not start, or was aborted/timed out.
              reject(error);
              return;
            }
            resolve({ exitCode: error ? Number((error as NodeJS.ErrnoException).code) : 0, stdout, stderr });
          },
        );
      });
    },
    async writeFile(path, data) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, data);
    },
    async readFile(path) {
      try {
        return await readFile(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    readPipe(path, signal) {
      return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = connect(path);
        const onAbort = (): void => {
          socket.destroy();
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => {
          signal.removeEventListener('abort', onAbort);
          resolve(Buffer.concat(chunks));
        });
        socket.on('error', (error: NodeJS.ErrnoException) => {
          signal.removeEventListener('abort', onAbort);
          if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(null);
          else reject(error);
        });
      });
    },
    async removeFile(path) {
      await rm(path, { force: true });
    },
  };
}
