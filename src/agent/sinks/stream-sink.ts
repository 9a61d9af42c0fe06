/**
 * The stdout sink: one AgentEvent per line (NDJSON), so a person running the agent by hand, or a
 * scheduler capturing its output, sees the cycle as it happens.
 */
import type { Writable } from 'node:stream';
import type { AgentEvent } from '../../domain/agent-log.ts';
import type { EventSink } from '../event-log.ts';

/**
 * Writes each event as a JSON line to a stream. A stream that breaks (a task with no console,
 * a closed pipe) is reported once and then left alone: the other sinks still carry the log.
 *
 * @example new EventLog([streamSink(process.stdout)], () => new Date())
 */
export function streamSink(stream: Writable, onError: (error: Error) => void = () => undefined): EventSink {
  let broken = false;
  stream.on('error', (error: Error) => {
    if (!broken) onError(error);
    broken = true;
  });
  return {
    write(event: AgentEvent): void {
      if (!broken) stream.write(`${JSON.stringify(event)}\n`);
    },
  };
}
