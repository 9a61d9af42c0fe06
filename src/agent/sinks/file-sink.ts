/**
 * The log-file sink: appends every event as a JSON line to the request's `logFile` the moment it
 * is emitted (synchronously, so a line is on disk before the next event). A connector that cannot
 * receive the HTTP callback (a firewall) reads this file by byte offset over SFTP; the file is
 * on the target's disk, so neither a dropped connection nor a reboot loses a line of it.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AgentEvent } from '../../domain/agent-log.ts';
import type { EventSink } from '../event-log.ts';

export interface FileSink extends EventSink {
  close(): void;
}

/**
 * Opens (truncates) `path` and returns a sink writing to it. A file that cannot be opened or
 * written is reported once; the other sinks still carry the log.
 *
 * @example const sink = fileSink('C:\\ProgramData\\Patchline\\logs\\r7-web01-1.jsonl', report)
 */
export function fileSink(path: string, onError: (error: Error) => void = () => undefined): FileSink {
  let fd: number | null = null;
  try {
    mkdirSync(dirname(path), { recursive: true });
    // Truncate: a relaunch of the same cycle starts its log afresh (its seqs start at 1 again).
    fd = openSync(path, 'w');
  } catch (error) {
    onError(error as Error);
  }
  return {
    write(event: AgentEvent): void {
      if (fd === null) return;
      try {
        writeSync(fd, `${JSON.stringify(event)}\n`);
      } catch (error) {
        onError(error as Error);
        fd = null;
      }
    },
    close(): void {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
