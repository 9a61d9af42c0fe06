/**
 * The cycle's event log: stamps every event with its seq (1, 2, 3 …) and time, keeps all of them
 * in memory (the whole log is handed over at the end), and fans each one out to the sinks.
 */
import type { AgentEvent, AgentEventBody } from '../domain/agent-log.ts';

/** Where events go as they happen (stdout, HTTP callback …). `write` must not block or throw. */
export interface EventSink {
  write(event: AgentEvent): void;
}

export class EventLog {
  private readonly all: AgentEvent[] = [];

  /**
   * @param onSinkError told when a sink throws; the event stays in the log and the other sinks
   *   still get it, because one broken output must not stop a patch cycle.
   */
  constructor(
    private readonly sinks: readonly EventSink[],
    private readonly now: () => Date,
    private readonly onSinkError: (error: unknown) => void = () => undefined,
  ) {}

  /** Stamps, records and fans out one event; returns it as recorded. */
  emit(body: AgentEventBody): AgentEvent {
    const event = { seq: this.all.length + 1, at: this.now().toISOString(), ...body } as AgentEvent;
    this.all.push(event);
    for (const sink of this.sinks) {
      try {
        sink.write(event);
      } catch (error) {
        this.onSinkError(error);
      }
    }
    return event;
  }

  /** Every event so far, oldest first. */
  events(): readonly AgentEvent[] {
    return this.all;
  }

  /** The seq of the newest event, 0 when empty. */
  lastSeq(): number {
    return this.all.length;
  }
}
