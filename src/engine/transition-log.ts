/**
 * What a transition leaves behind, as values: the event-log rows and the host row the store saves
 * (write-ahead, before any command runs), and the live-log lines an operator sees. Pure: the
 * driver saves and prints what these return, so each rule here is tested without a run.
 */
import type { AgentEvent } from '../domain/agent-log.ts';
import { type HostEvent, type HostNote, type HostState, type StepResult, countedCycles } from '../domain/cycle.ts';
import { updateLabel } from '../domain/update.ts';
import type { DescribeHResult } from '../domain/report.ts';
import type { EventRow, HostSnapshot } from '../store/runs-repo.ts';
import type { LogBody } from './host-context.ts';

/** An agent `progress` event applied while the cycle runs: no command, no note, no phase change. */
export function isProgressOnly(event: HostEvent, result: StepResult): boolean {
  return (
    event.kind === 'agent' &&
    event.event.kind === 'progress' &&
    result.commands.length === 0 &&
    result.notes.length === 0 &&
    result.state.phase === 'running'
  );
}

/** The host row and the updates this transition changed. */
export function snapshot(before: HostState, after: HostState): HostSnapshot {
  const updates = Object.values(after.updates)
    .filter((u) => before.updates[u.updateId] !== u)
    .map((u) => ({
      updateId: u.updateId,
      kb: u.kb,
      title: u.title,
      result: u.result,
      hresult: u.hresult,
      attempts: u.attempts,
      cycle: u.cycle,
      message: u.message,
    }));
  return {
    host: after.host,
    phase: after.phase,
    cycle: countedCycles(after),
    reboots: after.reboots,
    message: after.message,
    stateJson: JSON.stringify(after),
    updates,
  };
}

/** What the event log keeps of one transition: the input event, the notes, the phase change. */
export function transitionRows(before: HostState, event: HostEvent, result: StepResult, now: Date): EventRow[] {
  const at = now.toISOString();
  const host = before.host;
  const rows: EventRow[] = [];
  if (event.kind === 'agent')
    rows.push({ host, at, kind: 'agent', cycle: before.cycle, seq: event.event.seq, data: event.event });
  else rows.push({ host, at, kind: event.kind, cycle: before.cycle, seq: null, data: event });
  for (const note of result.notes)
    if (note.kind !== 'ignored')
      rows.push({ host, at, kind: `note:${note.kind}`, cycle: result.state.cycle, seq: null, data: note });
  if (before.phase !== result.state.phase)
    rows.push({
      host,
      at,
      kind: 'transition',
      cycle: result.state.cycle,
      seq: null,
      data: { from: before.phase, to: result.state.phase, message: result.state.message },
    });
  return rows;
}

/**
 * The live-log lines of one transition, in order: the event itself when it is news (a launch, a
 * refusal, agent events not seen before), then the state machine's notes.
 */
export function transitionLogBodies(
  before: HostState,
  event: HostEvent,
  result: StepResult,
  describe: DescribeHResult,
): LogBody[] {
  const after = result.state;
  const out: LogBody[] = [];
  switch (event.kind) {
    case 'launched':
      if (after.phase === 'running')
        out.push({
          kind: 'cycle-launched',
          cycle: after.cycle,
          taskId: event.taskId,
          pid: event.pid,
          bootId: event.bootId,
        });
      break;
    case 'launch-refused':
      out.push({ kind: 'launch-refused', cycle: before.cycle, hresult: event.hresult, message: event.message });
      break;
    case 'launch-unreachable':
      out.push({ kind: 'waiting-for-host', reason: 'unreachable-at-launch', seen: 'unreachable' });
      break;
    case 'agent':
      if (event.event.seq > before.lastSeq && !toldByNote(event.event, result.notes))
        out.push({ kind: 'agent-event', cycle: before.cycle, event: event.event });
      break;
    case 'log-fetched':
      out.push({ kind: 'log-fetched', cycle: before.cycle, events: event.events?.length ?? 0 });
      for (const e of [...(event.events ?? [])].sort((a, b) => a.seq - b.seq)) {
        if (e.seq > before.lastSeq && !toldByNote(e, result.notes))
          out.push({ kind: 'agent-event', cycle: before.cycle, event: e });
      }
      break;
    default:
      break;
  }
  for (const note of result.notes) {
    const body = noteBody(after, note, describe);
    if (body) out.push(body);
  }
  return out;
}

/**
 * An agent event whose news a note of the same transition tells better — a failed install (the
 * note adds the HRESULT's name and meaning and whether it is retried) or a loop (the note says
 * what to do): printing both showed each failure twice.
 */
function toldByNote(e: AgentEvent, notes: readonly HostNote[]): boolean {
  if (e.kind === 'update-result' && e.resultCode === 'failed')
    return notes.some((n) => n.kind === 'update-failed' && n.updateId === e.updateId);
  if (e.kind === 'loop-detected') return notes.some((n) => n.kind === 'loop-detected');
  return false;
}

function noteBody(after: HostState, note: HostNote, describe: DescribeHResult): LogBody | null {
  switch (note.kind) {
    case 'reboot-started':
      return { kind: 'reboot-started', cycle: after.cycle, by: note.by, reason: note.reason };
    case 'host-back':
      return { kind: 'host-back', bootId: note.bootId, afterMs: note.afterMs };
    case 'waiting-for-host':
      return { kind: 'waiting-for-host', reason: note.reason, seen: note.seen };
    case 'stream-lost':
      return { kind: 'stream-lost', cycle: note.cycle };
    case 'cycle-lost':
      return { kind: 'cycle-lost', cycle: note.cycle, reason: note.reason };
    case 'update-failed': {
      const u = after.updates[note.updateId];
      const d = note.hresult ? describe(note.hresult) : null;
      return {
        kind: 'update-failed',
        updateId: note.updateId,
        label: u ? updateLabel({ kbs: u.kb ? [u.kb] : [], title: u.title || u.updateId }) : note.updateId,
        hresult: note.hresult,
        hresultName: d?.name ?? null,
        meaning: d?.meaning ?? null,
        attempts: note.attempts,
        final: note.final,
      };
    }
    case 'loop-detected': {
      const first = after.updates[note.updateIds[0] ?? ''];
      return { kind: 'loop-detected', updateIds: note.updateIds, message: first?.message ?? 'update loop detected' };
    }
    case 'ignored':
      return null;
  }
}
