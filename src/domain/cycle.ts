/**
 * The per-host patch cycle as a pure state machine: `step(state, event, now) → { state, commands, notes }`.
 *
 * One HostState per host of a run. The engine feeds it events (the agent's events, results of the
 * commands it executed, timer/deadline/cancel/resume) and executes the commands it returns through
 * the transport; `notes` are facts worth a line in the live log. Every decision of the connector
 * loop lives here: max cycles, per-update attempts against --retries, loop detection, what a pending
 * reboot means under each --reboot policy, when a host is back after a reboot, and each host's
 * outcome. No I/O, no timers, no Date.now(): `now` is passed in, and values are never mutated.
 */
import type { AgentEvent, CycleOutcome, Mode, RebootPolicy } from './agent-log.ts';

export const HOST_PHASES = [
  'queued',
  'launching',
  'running',
  'fetching-log',
  'rebooting',
  'waiting-online',
  'compliant',
  'failed',
  'unreachable',
  'access-denied',
  'timed-out',
  'cancelled',
  'pending',
] as const;
export type HostPhase = (typeof HOST_PHASES)[number];

/**
 * `access-denied`: the target refused us — our credentials, or the task scheduler said
 * E_ACCESSDENIED (0x80070005). Like `unreachable` it means exit 3 and is resumed, but it is not a
 * host that is down, and an administrator fixes it differently (rights, not cables).
 */
export const HOST_OUTCOMES = [
  'compliant',
  'failed',
  'unreachable',
  'access-denied',
  'timed-out',
  'cancelled',
  'pending',
] as const;
/** The end phases; a host's outcome in the report. */
export type HostOutcome = (typeof HOST_OUTCOMES)[number];

/**
 * `blocked`: found and selected, but never installed because the host stopped first — an update
 * loop, an update that failed for good, --max-cycles — the entry's message says which.
 */
export const UPDATE_RESULTS = ['installed', 'failed', 'blocked', 'downloaded', 'available', 'skipped'] as const;
export type UpdateResult = (typeof UPDATE_RESULTS)[number];

export function isEndPhase(phase: HostPhase): phase is HostOutcome {
  return (HOST_OUTCOMES as readonly string[]).includes(phase);
}

/** The run options a host's decisions depend on; fixed for the run, kept in the state so resume needs nothing else. */
export interface CyclePolicy {
  readonly mode: Mode;
  readonly reboot: RebootPolicy;
  readonly maxCycles: number;
  readonly retries: number;
  readonly rebootTimeoutMs: number;
  /** First delay between probes while waiting for a host; doubles up to probeMaxDelayMs. */
  readonly probeInitialDelayMs: number;
  readonly probeMaxDelayMs: number;
  /**
   * After the agent said its reboot failed (or exited without rebooting), how long the host may
   * still show the same boot id before the engine reboots it itself. Absent in runs saved before
   * it existed: DEFAULT_AGENT_REBOOT_GRACE_MS.
   */
  readonly agentRebootGraceMs?: number;
}

/**
 * Default grace before the engine reboots a host whose agent failed to: long enough for a
 * Windows shutdown already under way to take the host off the network (a second `shutdown /r`
 * during one fails with "a system shutdown is in progress").
 */
export const DEFAULT_AGENT_REBOOT_GRACE_MS = 120_000;

export interface UpdateEntry {
  readonly updateId: string;
  readonly kb: string | null;
  readonly title: string;
  readonly result: UpdateResult;
  readonly hresult: string | null;
  /** Install (or, in download mode, download) attempts that ran to a result. */
  readonly attempts: number;
  /**
   * Each of those attempts, oldest first: a retried update keeps the HRESULT of every try, not
   * only the last. Absent in states saved before it existed.
   */
  readonly attemptResults?: readonly AttemptResult[];
  /** The last cycle that touched this update. */
  readonly cycle: number;
  /** The cycle that installed it, for loop detection. */
  readonly installedCycle: number | null;
  /** Failed for good (retries used up, loop detected, no reboot allowed): excluded from later cycles. */
  readonly final: boolean;
  readonly message: string | null;
}

/** One install (or download-mode download) attempt of an update, as the agent reported it. */
export interface AttemptResult {
  readonly cycle: number;
  /** When the agent reported it (ISO-8601, the target's clock). */
  readonly at: string;
  readonly result: 'succeeded' | 'failed';
  readonly hresult: string | null;
}

export interface LaunchInfo {
  readonly taskId: string;
  readonly pid: number;
}

export interface CycleEnd {
  readonly outcome: CycleOutcome;
  readonly rebootRequired: boolean;
  readonly willReboot: boolean;
  readonly message: string | null;
  readonly hresult: string | null;
}

export const WAIT_REASONS = ['reboot', 'lost-cycle', 'unreachable-at-launch'] as const;
export type WaitReason = (typeof WAIT_REASONS)[number];

/** Waiting for a host: after a reboot until its boot id changed, or until it answers again. */
export interface HostWait {
  readonly reason: WaitReason;
  /** Who rebooted, when reason is reboot. */
  readonly by: 'agent' | 'engine' | null;
  /** ISO-8601. */
  readonly since: string;
  readonly deadlineAt: string;
  /** Probes done so far (drives the backoff). */
  readonly attempt: number;
  /** What the last probe saw, for the unreachable message. */
  readonly lastSeen: 'nothing' | 'unreachable' | 'same-boot' | 'servicing-busy';
  /** The agent that was to reboot the host said it could not (or exited without doing it). */
  readonly agentRebootFailed?: { readonly at: string; readonly message: string } | null;
}

export interface HostState {
  readonly host: string;
  readonly policy: CyclePolicy;
  readonly phase: HostPhase;
  /** Cycles launched so far (lost ones included); the current cycle's number while one runs. */
  readonly cycle: number;
  /**
   * Cycles cut short by the connector's side — cancel, deadline, a crash or a locked store — not
   * by the host. They do not count against --max-cycles (see countedCycles). Absent in states
   * saved before it existed: 0.
   */
  readonly interruptedCycles?: number;
  readonly reboots: number;
  readonly lostCycles: number;
  /** Highest agent seq applied in the current cycle (events at or below it are duplicates). */
  readonly lastSeq: number;
  readonly launch: LaunchInfo | null;
  /** Boot id the engine saw just before launching the current cycle. */
  readonly bootIdAtLaunch: string | null;
  /** The current cycle's cycle-finished, once known. */
  readonly cycleEnd: CycleEnd | null;
  /** The host came back from a reboot after the current cycle. */
  readonly rebootedAfterCycle: boolean;
  /** The current cycle's stream is gone (connector restarted): read the agent's log instead. */
  readonly streamLost: boolean;
  readonly wait: HostWait | null;
  readonly updates: Readonly<Record<string, UpdateEntry>>;
  /** Update ids selected by the latest scan of the current cycle. */
  readonly lastSelected: readonly string[];
  /** Update ids found installing-again (loop detection). */
  readonly looped: readonly string[];
  /** Why the host ended (or the latest notable problem). */
  readonly message: string | null;
}

export type HostEvent =
  | { readonly kind: 'start' }
  /** The agent started; bootId is what the probe before launch saw. */
  | { readonly kind: 'launched'; readonly taskId: string; readonly pid: number; readonly bootId: string | null }
  | { readonly kind: 'launch-unreachable' }
  | { readonly kind: 'launch-refused'; readonly hresult: string; readonly message: string }
  /**
   * The transport was refused by the target in any phase: our credentials (`auth`) or the target's
   * identity (`host-key`). Waiting will not fix it: the host ends at once.
   */
  | { readonly kind: 'host-refused'; readonly failure: 'auth' | 'host-key' | 'refused'; readonly message: string }
  | { readonly kind: 'agent'; readonly event: AgentEvent }
  /** The agent process is gone without a cycle-finished reaching us. */
  | { readonly kind: 'agent-gone' }
  | { readonly kind: 'log-fetched'; readonly events: readonly AgentEvent[] | null }
  | {
      readonly kind: 'probe';
      readonly reachable: boolean;
      readonly bootId: string | null;
      readonly servicingIdle: boolean;
    }
  | { readonly kind: 'reboot-sent' }
  | { readonly kind: 'reboot-failed'; readonly message: string }
  /** The agent was to reboot the host and says it could not (a `warning` after cycle-finished), or it exited without rebooting. */
  | { readonly kind: 'agent-reboot-failed'; readonly message: string }
  | { readonly kind: 'deadline' }
  | { readonly kind: 'cancel' }
  | { readonly kind: 'resume' };

export type HostCommand =
  | {
      readonly kind: 'launch';
      readonly cycle: number;
      readonly exclude: readonly string[];
      readonly installedEarlier: readonly string[];
    }
  | { readonly kind: 'fetch-log'; readonly cycle: number }
  | { readonly kind: 'probe'; readonly delayMs: number }
  | { readonly kind: 'reboot' }
  | { readonly kind: 'stop-agent'; readonly launch: LaunchInfo }
  | { readonly kind: 'finish'; readonly outcome: HostOutcome; readonly message: string | null };

/** Facts for the live log that are not visible from the event alone. */
export type HostNote =
  | { readonly kind: 'reboot-started'; readonly by: 'agent' | 'engine'; readonly reason: string }
  | { readonly kind: 'host-back'; readonly bootId: string | null; readonly afterMs: number }
  | { readonly kind: 'waiting-for-host'; readonly reason: WaitReason; readonly seen: HostWait['lastSeen'] }
  | { readonly kind: 'stream-lost'; readonly cycle: number }
  | { readonly kind: 'cycle-lost'; readonly cycle: number; readonly reason: string }
  | {
      readonly kind: 'update-failed';
      readonly updateId: string;
      readonly final: boolean;
      readonly attempts: number;
      readonly hresult: string | null;
    }
  | { readonly kind: 'loop-detected'; readonly updateIds: readonly string[] }
  | { readonly kind: 'ignored'; readonly event: HostEvent['kind']; readonly phase: HostPhase };

export interface StepResult {
  readonly state: HostState;
  readonly commands: readonly HostCommand[];
  readonly notes: readonly HostNote[];
}

/** The state of a host before its first cycle. */
export function initialHostState(host: string, policy: CyclePolicy): HostState {
  return {
    host,
    policy,
    phase: 'queued',
    cycle: 0,
    reboots: 0,
    lostCycles: 0,
    lastSeq: 0,
    launch: null,
    bootIdAtLaunch: null,
    cycleEnd: null,
    rebootedAfterCycle: false,
    streamLost: false,
    wait: null,
    updates: {},
    lastSelected: [],
    looped: [],
    message: null,
  };
}

/** End states a resume picks up again: the run was stopped, or the host was away. */
export const RESUMABLE_OUTCOMES: readonly HostOutcome[] = ['cancelled', 'timed-out', 'unreachable', 'access-denied'];

/** E_ACCESSDENIED: the task scheduler (or the share) refused the connector's account. */
export const E_ACCESSDENIED = '0x80070005';

export function isResumable(state: HostState): boolean {
  return !isEndPhase(state.phase) || RESUMABLE_OUTCOMES.includes(state.phase);
}

/**
 * The cycles that count against --max-cycles and that the report shows: those that ran to an end
 * (or were lost by the host), not those the connector itself interrupted.
 *
 * @example countedCycles({ ...state, cycle: 3, interruptedCycles: 1 }) // 2
 */
export function countedCycles(state: Pick<HostState, 'cycle' | 'interruptedCycles'>): number {
  return Math.max(0, state.cycle - (state.interruptedCycles ?? 0));
}

/** Waiting for the reboot the cycle's agent said it would do, with no failure of it known yet. */
export function awaitsAgentReboot(state: HostState): boolean {
  return (
    state.phase === 'rebooting' &&
    state.wait?.reason === 'reboot' &&
    state.wait.by === 'agent' &&
    !state.wait.agentRebootFailed
  );
}

/** The ids the next cycle must not install: failed for good or looping. */
export function excludedUpdates(state: HostState): readonly string[] {
  return Object.values(state.updates)
    .filter((u) => u.final)
    .map((u) => u.updateId)
    .sort();
}

/** Probe backoff: doubles from the initial delay, capped; never past the wait's deadline. */
export function probeDelayMs(policy: CyclePolicy, attempt: number, remainingMs: number): number {
  const backoff = Math.min(policy.probeInitialDelayMs * 2 ** Math.min(attempt, 20), policy.probeMaxDelayMs);
  return Math.max(0, Math.min(backoff, remainingMs));
}

/** "KB5044444" or the title when the update has no KB. */
export function updateName(u: Pick<UpdateEntry, 'kb' | 'title' | 'updateId'>): string {
  return u.kb ? `KB${u.kb}` : u.title || u.updateId;
}

export function loopMessage(u: UpdateEntry, cycle?: number): string {
  const when =
    u.installedCycle !== undefined && u.installedCycle !== null && u.installedCycle === cycle
      ? `was installed in cycle ${cycle} and offered again in the same cycle, right after its "successful" install`
      : `was installed in cycle ${u.installedCycle ?? '?'} but is offered again after the reboot`;
  return `${updateName(u)} ${when}: the install does not stick (silent rollback or a detection that never becomes true). Stopped instead of looping; see the update's history on the host.`;
}

/**
 * Applies one event to a host. Pure.
 *
 * @example
 *   let r = step(initialHostState('web01', policy), { kind: 'start' }, now);
 *   // r.state.phase === 'launching', r.commands[0].kind === 'launch'
 */
export function step(state: HostState, event: HostEvent, now: Date): StepResult {
  switch (event.kind) {
    case 'cancel':
      return stopHere(state, 'cancelled', cancelMessage(state));
    case 'deadline':
      return stopHere(
        state,
        'timed-out',
        `The deadline passed ${deadlineWhere(state)}: ${state.phase === 'launching' ? 'that cycle does not count, and no other was started' : 'no new cycle was started'}${state.phase === 'running' ? ' and the running agent was stopped' : ''}. Resume the run to finish.`,
      );
    case 'resume':
      return resume(state, now);
    default:
      break;
  }
  if (isEndPhase(state.phase)) {
    // A launch that completed after the host was stopped: do not leave that agent running.
    if (event.kind === 'launched')
      return out(state, [{ kind: 'stop-agent', launch: { taskId: event.taskId, pid: event.pid } }]);
    // The last words of an agent stopped by cancel/deadline: what it installed before stopping
    // belongs in the report (a resume's scan will not offer it again).
    if (
      (state.phase === 'cancelled' || state.phase === 'timed-out') &&
      (event.kind === 'agent' || event.kind === 'log-fetched')
    ) {
      return recordLateEvents(state, event.kind === 'agent' ? [event.event] : (event.events ?? []));
    }
    return ignored(state, event);
  }
  switch (event.kind) {
    case 'start':
      return state.phase === 'queued' ? launchNext(state, []) : ignored(state, event);
    case 'launched':
      if (state.phase !== 'launching') return ignored(state, event);
      return out({
        ...state,
        phase: 'running',
        launch: { taskId: event.taskId, pid: event.pid },
        bootIdAtLaunch: event.bootId,
        lastSeq: 0,
        cycleEnd: null,
        rebootedAfterCycle: false,
        streamLost: false,
        lastSelected: [],
      });
    case 'launch-unreachable':
      if (state.phase !== 'launching') return ignored(state, event);
      // The cycle never started: give it back and wait for the host to answer.
      return startWait({ ...state, cycle: state.cycle - 1 }, 'unreachable-at-launch', null, now, []);
    case 'launch-refused':
      if (state.phase !== 'launching') return ignored(state, event);
      if (event.hresult.toLowerCase() === E_ACCESSDENIED) {
        return finish(
          { ...state, cycle: state.cycle - 1 },
          'access-denied',
          `Access denied: the task scheduler on ${state.host} refused to start the agent (${event.hresult} E_ACCESSDENIED): ${event.message} The connector's account needs administrator rights on ${state.host}; fix them, then resume the run.`,
        );
      }
      return finish(
        { ...state, cycle: state.cycle - 1 },
        'unreachable',
        `The task scheduler on ${state.host} refused to start the agent (${event.hresult}): ${event.message}`,
      );
    case 'host-refused': {
      // Nothing to wait for: the same credentials or key will be refused again. A launching
      // cycle never started; a running agent cannot be reached to stop it (it ends on its own).
      const base = state.phase === 'launching' ? { ...state, cycle: state.cycle - 1 } : state;
      return finish(base, event.failure === 'auth' ? 'access-denied' : 'unreachable', event.message);
    }
    case 'agent':
      // A warning right behind the cycle-finished that promised a reboot: the reboot failed.
      if (state.phase === 'rebooting' && event.event.kind === 'warning' && event.event.seq > state.lastSeq)
        return agentRebootFailed(state, event.event.message, now);
      if (state.phase !== 'running') return ignored(state, event);
      return applyAgentEvents(state, [event.event], now);
    case 'agent-gone':
      if (state.phase !== 'running') return ignored(state, event);
      return out(
        { ...state, phase: 'fetching-log' },
        [{ kind: 'fetch-log', cycle: state.cycle }],
        [{ kind: 'stream-lost', cycle: state.cycle }],
      );
    case 'log-fetched':
      return logFetched(state, event.events, now);
    case 'probe':
      return probed(state, event, now);
    case 'reboot-sent':
      if (state.phase !== 'rebooting' || !state.wait) return ignored(state, event);
      return out(state, [
        { kind: 'probe', delayMs: probeDelayMs(state.policy, 0, msUntil(state.wait.deadlineAt, now)) },
      ]);
    case 'reboot-failed':
      if (state.phase !== 'rebooting') return ignored(state, event);
      return finish(
        state,
        'failed',
        `Rebooting ${state.host} failed: ${event.message}. Reboot it by hand and resume the run.`,
      );
    case 'agent-reboot-failed':
      return agentRebootFailed(state, event.message, now);
  }
}

// ── agent events ────────────────────────────────────────────────────────────────────────────

function applyAgentEvents(state: HostState, events: readonly AgentEvent[], now: Date): StepResult {
  let s = state;
  const notes: HostNote[] = [];
  let rebootFailure: string | null = null;
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    if (e.seq <= s.lastSeq) continue; // a resend or an event already seen on the stream
    s = { ...s, lastSeq: e.seq };
    // A warning after a cycle-finished that promised a reboot: the agent could not reboot (the
    // agent writes nothing else after cycle-finished but `rebooting`).
    if (e.kind === 'warning' && s.cycleEnd?.willReboot) rebootFailure = e.message;
    switch (e.kind) {
      case 'scan-result':
        s = scanned(s, e, notes);
        break;
      case 'update-result':
        s = updateResult(s, e, notes);
        break;
      case 'loop-detected':
        s = markLooped(s, e.updateIds, notes);
        break;
      case 'cycle-finished':
        s = {
          ...s,
          cycleEnd: {
            outcome: e.outcome,
            rebootRequired: e.rebootRequired,
            willReboot: e.willReboot,
            message: e.message,
            hresult: e.hresult,
          },
        };
        break;
      default:
        break;
    }
  }
  if (!s.cycleEnd || (s.phase !== 'running' && s.phase !== 'fetching-log')) return out(s, [], notes);
  const finished = cycleFinished(s, now);
  const result = { state: finished.state, commands: finished.commands, notes: [...notes, ...finished.notes] };
  return rebootFailure === null
    ? result
    : { ...result, state: agentRebootFailed(result.state, rebootFailure, now).state };
}

/**
 * The agent that was to reboot the host could not. Recorded on the wait; the probes decide: a
 * host whose boot id still has not changed after the grace period is rebooted by the engine.
 */
function agentRebootFailed(s: HostState, message: string, now: Date): StepResult {
  const w = s.wait;
  if (s.phase !== 'rebooting' || !w || w.reason !== 'reboot' || w.by !== 'agent' || w.agentRebootFailed) {
    return ignored(s, { kind: 'agent-reboot-failed', message });
  }
  return out({ ...s, wait: { ...w, agentRebootFailed: { at: now.toISOString(), message } } });
}

/** Update-level effects of agent events, without any decision: the host stays where it is. */
function recordLateEvents(state: HostState, events: readonly AgentEvent[]): StepResult {
  let s = state;
  const notes: HostNote[] = [];
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    if (e.seq <= s.lastSeq) continue;
    s = { ...s, lastSeq: e.seq };
    if (e.kind === 'update-result') s = updateResult(s, e, notes);
    else if (e.kind === 'scan-result') s = scanned(s, e, notes, false);
  }
  return out(s, [], notes);
}

type ScanEvent = Extract<AgentEvent, { kind: 'scan-result' }>;
type UpdateResultEvent = Extract<AgentEvent, { kind: 'update-result' }>;

function scanned(s: HostState, e: ScanEvent, notes: HostNote[], detectLoops = true): HostState {
  const updates: Record<string, UpdateEntry> = { ...s.updates };
  const selected = new Set(e.selected);
  const skipReason = new Map(e.skipped.map((k) => [k.updateId, k.reason]));
  for (const u of e.found) {
    const prev = updates[u.updateId];
    const base: UpdateEntry = prev ?? {
      updateId: u.updateId,
      kb: u.kbs[0] ?? null,
      title: u.title,
      result: 'available',
      hresult: null,
      attempts: 0,
      cycle: s.cycle,
      installedCycle: null,
      final: false,
      message: null,
    };
    if (selected.has(u.updateId)) {
      updates[u.updateId] = {
        ...base,
        kb: u.kbs[0] ?? base.kb,
        title: u.title,
        cycle: s.cycle,
        result: base.result === 'skipped' ? 'available' : base.result,
        message: base.result === 'skipped' ? null : base.message,
      };
    } else if (!prev) {
      const reason = skipReason.get(u.updateId);
      updates[u.updateId] = { ...base, result: 'skipped', message: reason ? `left out: ${reason}` : 'left out' };
    }
  }
  const again = e.selected.filter((id) => {
    const u = updates[id];
    return u !== undefined && u.installedCycle !== null && u.installedCycle < s.cycle;
  });
  const next = { ...s, updates, lastSelected: [...e.selected] };
  return detectLoops && again.length > 0 ? markLooped(next, again, notes) : next;
}

function markLooped(s: HostState, ids: readonly string[], notes: HostNote[]): HostState {
  const fresh = ids.filter((id) => !s.looped.includes(id));
  if (fresh.length === 0) return s;
  const updates: Record<string, UpdateEntry> = { ...s.updates };
  for (const id of fresh) {
    const u = updates[id] ?? {
      updateId: id,
      kb: null,
      title: id,
      result: 'failed',
      hresult: null,
      attempts: 0,
      cycle: s.cycle,
      installedCycle: null,
      final: true,
      message: null,
    };
    updates[id] = { ...u, result: 'failed', final: true, cycle: s.cycle, message: loopMessage(u, s.cycle) };
  }
  notes.push({ kind: 'loop-detected', updateIds: fresh });
  return { ...s, updates, looped: [...s.looped, ...fresh] };
}

function updateResult(s: HostState, e: UpdateResultEvent, notes: HostNote[]): HostState {
  const prev = s.updates[e.updateId] ?? {
    updateId: e.updateId,
    kb: null,
    title: e.updateId,
    result: 'available',
    hresult: null,
    attempts: 0,
    cycle: s.cycle,
    installedCycle: null,
    final: false,
    message: null,
  };
  if (prev.final) return s;
  const ok = e.resultCode === 'succeeded' || e.resultCode === 'succeededWithErrors';
  const counts = e.phase === 'install' || s.policy.mode === 'download';
  let next: UpdateEntry;
  const attempt = (result: AttemptResult['result']): readonly AttemptResult[] => [
    ...(prev.attemptResults ?? []),
    { cycle: s.cycle, at: e.at, result, hresult: e.hresult },
  ];
  if (ok && e.phase === 'install') {
    next = {
      ...prev,
      result: 'installed',
      attempts: prev.attempts + 1,
      attemptResults: attempt('succeeded'),
      cycle: s.cycle,
      installedCycle: s.cycle,
      hresult: e.hresult,
      message: null,
    };
  } else if (ok) {
    next = {
      ...prev,
      result: prev.result === 'installed' ? 'installed' : 'downloaded',
      attempts: counts ? prev.attempts + 1 : prev.attempts,
      ...(counts ? { attemptResults: attempt('succeeded') } : {}),
      cycle: s.cycle,
      hresult: null,
      message: null,
    };
  } else if (e.resultCode === 'failed') {
    const attempts = prev.attempts + 1;
    // Retried after a reboot while attempts ≤ retries; the reboot needs the policy's permission.
    const final = attempts > s.policy.retries || s.policy.reboot === 'never';
    next = {
      ...prev,
      result: 'failed',
      attempts,
      attemptResults: attempt('failed'),
      cycle: s.cycle,
      hresult: e.hresult,
      final,
      message: null,
    };
    notes.push({ kind: 'update-failed', updateId: e.updateId, final, attempts, hresult: e.hresult });
  } else {
    // aborted / notStarted: the attempt did not run to a result; it does not count.
    next = { ...prev, cycle: s.cycle, message: `${e.phase} ${e.resultCode}` };
  }
  return { ...s, updates: { ...s.updates, [e.updateId]: next } };
}

// ── end of a cycle, reboot wait, next cycle ───────────────────────────────────────────────────

function cycleFinished(s: HostState, now: Date): StepResult {
  const end = s.cycleEnd;
  if (!end) return out(s);
  const settled: HostState = { ...s, launch: null };
  if (end.willReboot) {
    const reason =
      end.outcome === 'reboot-pending'
        ? 'a reboot was pending before installing'
        : end.rebootRequired
          ? 'installed updates require a reboot'
          : `--reboot ${s.policy.reboot}`;
    return startWait(settled, 'reboot', 'agent', now, [{ kind: 'reboot-started', by: 'agent', reason }]);
  }
  return afterCycle(settled, now);
}

/** What to do once a cycle is over and, if it rebooted, the host is back. */
function afterCycle(s: HostState, now: Date): StepResult {
  const end = s.cycleEnd;
  const finals = Object.values(s.updates).filter((u) => u.final);
  const retryable = Object.values(s.updates).filter((u) => u.result === 'failed' && !u.final);
  if (s.looped.length > 0) {
    const first = s.updates[s.looped[0] ?? ''];
    return finish(s, 'failed', first?.message ?? 'Update loop detected.');
  }
  if (end === null) return nextCycle(s, `cycle ${s.cycle} was lost`);
  const failedMessage = () =>
    `${finals.length} update(s) failed: ${finals.map((u) => `${updateName(u)} (${u.hresult ?? 'no HRESULT'}, ${u.attempts} attempt(s))`).join(', ')}.`;
  switch (end.outcome) {
    case 'done':
      if (finals.length > 0) return finish(s, 'failed', failedMessage());
      if (s.policy.mode !== 'install' && s.lastSelected.length > 0) {
        return finish(
          s,
          'pending',
          `${s.lastSelected.length} matching update(s) ${s.policy.mode === 'scan' ? 'available' : 'downloaded, not installed'} (--${s.policy.mode}).`,
        );
      }
      return finish(s, 'compliant', null);
    case 'reboot-required':
    case 'reboot-pending':
      if (s.rebootedAfterCycle) return nextCycle(s, null);
      if (finals.length > 0) return finish(s, 'failed', failedMessage());
      return finish(
        s,
        'pending',
        end.outcome === 'reboot-pending'
          ? `A reboot was pending on ${s.host} before installing and --reboot ${s.policy.reboot} does not allow rebooting: nothing was installed. Reboot the host (or use --reboot if-required) and run again.`
          : `${s.host} needs a reboot to finish installing and --reboot ${s.policy.reboot} does not allow it. Reboot the host and run again to install what is left.`,
      );
    case 'failed':
      if (
        retryable.length > 0 &&
        !s.rebootedAfterCycle &&
        s.policy.reboot !== 'never' &&
        countedCycles(s) < s.policy.maxCycles
      ) {
        const waited = startWait(s, 'reboot', 'engine', now, [
          {
            kind: 'reboot-started',
            by: 'engine',
            reason: `retry ${retryable.map(updateName).join(', ')} after a reboot`,
          },
        ]);
        return { ...waited, commands: [{ kind: 'reboot' }] };
      }
      if (retryable.length > 0 && s.rebootedAfterCycle) return nextCycle(s, null);
      return finish(
        s,
        'failed',
        finals.length > 0
          ? failedMessage()
          : (end.message ?? `Cycle ${s.cycle} failed${end.hresult ? ` (${end.hresult})` : ''}.`),
      );
    case 'loop-detected':
      return finish(s, 'failed', end.message ?? 'Update loop detected.');
    case 'aborted':
    case 'error':
      return nextCycle(
        s,
        `the agent reported ${end.outcome}${end.hresult ? ` (${end.hresult})` : ''}${end.message ? `: ${end.message}` : ''}`,
      );
  }
}

function nextCycle(s: HostState, problem: string | null): StepResult {
  if (countedCycles(s) >= s.policy.maxCycles) {
    const finals = Object.values(s.updates).filter((u) => u.final);
    const left = s.lastSelected.filter((id) => !s.updates[id]?.final && s.updates[id]?.result !== 'installed');
    const why = problem ? ` (last: ${problem})` : '';
    const msg = `Stopped after ${countedCycles(s)} cycle(s) (--max-cycles ${s.policy.maxCycles})${why} with work left${
      left.length
        ? `: ${left
            .map((id) => {
              const u = s.updates[id];
              return u ? updateName(u) : id;
            })
            .join(', ')}`
        : ''
    }. Run again, or raise --max-cycles.`;
    return finish(s, finals.length > 0 || problem ? 'failed' : 'pending', msg);
  }
  return launchNext({ ...s, message: problem ?? s.message }, []);
}

function launchNext(s: HostState, notes: readonly HostNote[]): StepResult {
  if (countedCycles(s) >= s.policy.maxCycles) return nextCycle(s, null);
  const cycle = s.cycle + 1;
  const installedEarlier = Object.values(s.updates)
    .filter((u) => u.installedCycle !== null)
    .map((u) => u.updateId)
    .sort();
  const next: HostState = {
    ...s,
    phase: 'launching',
    cycle,
    launch: null,
    lastSeq: 0,
    cycleEnd: null,
    rebootedAfterCycle: false,
    streamLost: false,
    wait: null,
  };
  return out(next, [{ kind: 'launch', cycle, exclude: excludedUpdates(s), installedEarlier }], notes);
}

function startWait(
  s: HostState,
  reason: WaitReason,
  by: 'agent' | 'engine' | null,
  now: Date,
  notes: readonly HostNote[],
): StepResult {
  const wait: HostWait = {
    reason,
    by,
    since: now.toISOString(),
    deadlineAt: new Date(now.getTime() + s.policy.rebootTimeoutMs).toISOString(),
    attempt: 0,
    lastSeen: 'nothing',
  };
  const phase: HostPhase = reason === 'reboot' ? 'rebooting' : 'waiting-online';
  const next: HostState = { ...s, phase, wait, reboots: reason === 'reboot' ? s.reboots + 1 : s.reboots };
  return out(next, [{ kind: 'probe', delayMs: probeDelayMs(s.policy, 0, s.policy.rebootTimeoutMs) }], notes);
}

function probed(s: HostState, e: Extract<HostEvent, { kind: 'probe' }>, now: Date): StepResult {
  const w = s.wait;
  if ((s.phase !== 'rebooting' && s.phase !== 'waiting-online') || !w) return ignored(s, e);
  const bootChanged =
    e.bootId !== null && (w.reason !== 'reboot' || s.bootIdAtLaunch === null || e.bootId !== s.bootIdAtLaunch);
  const seen: HostWait['lastSeen'] = !e.reachable
    ? 'unreachable'
    : !bootChanged
      ? 'same-boot'
      : !e.servicingIdle
        ? 'servicing-busy'
        : 'nothing';
  if (e.reachable && bootChanged && e.servicingIdle) {
    const back: HostNote = { kind: 'host-back', bootId: e.bootId, afterMs: now.getTime() - Date.parse(w.since) };
    const ready: HostState = {
      ...s,
      wait: null,
      rebootedAfterCycle: w.reason === 'reboot' ? true : s.rebootedAfterCycle,
      bootIdAtLaunch: e.bootId,
    };
    const r = w.reason === 'unreachable-at-launch' ? launchNext(ready, []) : afterCycle(ready, now);
    return { ...r, notes: [back, ...r.notes] };
  }
  const failed = w.agentRebootFailed;
  const graceMs = s.policy.agentRebootGraceMs ?? DEFAULT_AGENT_REBOOT_GRACE_MS;
  if (failed && w.by === 'agent' && e.reachable && !bootChanged && now.getTime() - Date.parse(failed.at) >= graceMs) {
    // The agent's reboot did not happen and the host is still up on the same boot: reboot it
    // ourselves (the same command as a retry's reboot), with a fresh reboot timeout.
    const wait: HostWait = {
      reason: 'reboot',
      by: 'engine',
      since: now.toISOString(),
      deadlineAt: new Date(now.getTime() + s.policy.rebootTimeoutMs).toISOString(),
      attempt: 0,
      lastSeen: 'nothing',
    };
    return out(
      { ...s, wait },
      [{ kind: 'reboot' }],
      [{ kind: 'reboot-started', by: 'engine', reason: `the agent could not reboot the host (${failed.message})` }],
    );
  }
  const remaining = msUntil(w.deadlineAt, now);
  if (remaining <= 0) {
    const what =
      w.reason === 'reboot'
        ? `after the reboot of cycle ${s.cycle}`
        : w.reason === 'lost-cycle'
          ? `after cycle ${s.cycle} was lost`
          : `for cycle ${s.cycle + 1}`;
    const last = {
      unreachable: 'it did not answer',
      'same-boot': 'it answered but had not rebooted (same boot id)',
      'servicing-busy': 'it was back but Windows servicing was still busy',
      nothing: 'no probe answered',
    }[seen];
    const verb = w.reason === 'unreachable-at-launch' ? 'was not reachable' : 'did not come back';
    return finish(
      s,
      'unreachable',
      `${s.host} ${verb} within the reboot timeout (${formatMs(s.policy.rebootTimeoutMs)}) ${what}: ${last}. Check the host's console, then resume the run.`,
    );
  }
  const attempt = w.attempt + 1;
  const phase: HostPhase = w.reason === 'reboot' && bootChanged ? 'waiting-online' : s.phase;
  const notes: HostNote[] = w.lastSeen !== seen ? [{ kind: 'waiting-for-host', reason: w.reason, seen }] : [];
  return out(
    { ...s, phase, wait: { ...w, attempt, lastSeen: seen } },
    [{ kind: 'probe', delayMs: probeDelayMs(s.policy, attempt, remaining) }],
    notes,
  );
}

function logFetched(s: HostState, events: readonly AgentEvent[] | null, now: Date): StepResult {
  if (s.phase === 'running') {
    // A poll of the agent's log while it still runs (the stream is gone): take what is new.
    return events && events.length > 0 ? applyAgentEvents(s, events, now) : out(s);
  }
  if (s.phase !== 'fetching-log') return ignored(s, { kind: 'log-fetched', events });
  const applied = events ? applyAgentEvents(s, events, now) : out(s);
  if (applied.state.phase !== 'fetching-log') return applied;
  // No cycle-finished anywhere: the cycle is lost. Count it, see whether the host is there, go again.
  const lost: HostState = { ...applied.state, lostCycles: applied.state.lostCycles + 1, launch: null };
  const reason =
    events === null
      ? 'the agent stopped and its log could not be fetched'
      : 'the agent stopped before finishing its cycle';
  const waited = startWait(lost, 'lost-cycle', null, now, [
    ...applied.notes,
    { kind: 'cycle-lost', cycle: s.cycle, reason },
  ]);
  return { ...waited, state: { ...waited.state, message: `cycle ${s.cycle} lost: ${reason}` } };
}

// ── stop, resume ─────────────────────────────────────────────────────────────────────────────

function stopHere(s: HostState, outcome: 'cancelled' | 'timed-out', message: string): StepResult {
  if (isEndPhase(s.phase)) return out(s);
  const commands: HostCommand[] = s.phase === 'running' && s.launch ? [{ kind: 'stop-agent', launch: s.launch }] : [];
  // A cycle cut short by the connector's side did not run to an end: it does not count against
  // --max-cycles, and a resume runs a full cycle in its place.
  const midCycle = s.phase === 'launching' || s.phase === 'running' || s.phase === 'fetching-log';
  const counted = midCycle ? { ...s, interruptedCycles: (s.interruptedCycles ?? 0) + 1 } : s;
  const r = finish(counted, outcome, message);
  return { ...r, commands: [...commands, ...r.commands] };
}

function resume(s: HostState, now: Date): StepResult {
  const fresh = (w: HostWait): HostWait => ({
    ...w,
    attempt: 0,
    deadlineAt: new Date(Math.max(Date.parse(w.deadlineAt), now.getTime() + s.policy.rebootTimeoutMs)).toISOString(),
  });
  switch (s.phase) {
    case 'cancelled':
    case 'timed-out':
    case 'unreachable':
      // Stopped half-way (or the host was away): the next cycle's scan sees what stuck. Updates
      // that failed for good stay excluded; the cycle count goes on (--max-cycles still bounds it).
      return out({ ...s, phase: 'queued', launch: null, wait: null, message: null });
    case 'launching':
      // We do not know whether the launch happened: launch this cycle again (the agent scans first).
      return out({ ...s, phase: 'queued', cycle: s.cycle - 1 });
    case 'running':
      return out({ ...s, streamLost: true }, [], [{ kind: 'stream-lost', cycle: s.cycle }]);
    case 'fetching-log':
      return out(s, [{ kind: 'fetch-log', cycle: s.cycle }]);
    case 'rebooting':
    case 'waiting-online':
      if (!s.wait) return out({ ...s, phase: 'queued' });
      return out({ ...s, wait: fresh(s.wait) }, [{ kind: 'probe', delayMs: 0 }]);
    default:
      return out(s);
  }
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────

function finish(s: HostState, outcome: HostOutcome, message: string | null): StepResult {
  const updates = markBlocked(s, outcome);
  return out(
    {
      ...s,
      updates,
      phase: outcome,
      wait: null,
      launch: outcome === 'cancelled' || outcome === 'timed-out' ? s.launch : null,
      message,
    },
    [{ kind: 'finish', outcome, message }],
  );
}

/**
 * In install mode, a host that ends for good (not cancelled or timed out: those resume) leaves the
 * updates it found and meant to install but never reached `blocked`, with the reason — so the
 * report lists them instead of leaving them `available` as if a scan had been asked for.
 */
function markBlocked(s: HostState, outcome: HostOutcome): HostState['updates'] {
  if (s.policy.mode !== 'install' || outcome === 'compliant' || outcome === 'cancelled' || outcome === 'timed-out')
    return s.updates;
  const waiting = Object.values(s.updates).filter((u) => u.result === 'available' || u.result === 'downloaded');
  if (waiting.length === 0) return s.updates;
  const looped = s.looped
    .map((id) => s.updates[id])
    .filter((u) => u !== undefined)
    .map(updateName);
  const failed = Object.values(s.updates)
    .filter((u) => u.final && !s.looped.includes(u.updateId))
    .map(updateName);
  const why =
    looped.length > 0
      ? `the host stopped on the update loop of ${looped.join(', ')}`
      : failed.length > 0
        ? `the host stopped after ${failed.join(', ')} failed`
        : outcome === 'pending'
          ? `the host stopped at --max-cycles ${s.policy.maxCycles} or could not reboot`
          : `the host ended ${outcome}`;
  const updates: Record<string, UpdateEntry> = { ...s.updates };
  for (const u of waiting)
    updates[u.updateId] = {
      ...u,
      result: 'blocked',
      message: `${u.result === 'downloaded' ? 'Downloaded but not installed' : 'Not installed'}: ${why}. Run again once that is fixed.`,
    };
  return updates;
}

function out(state: HostState, commands: readonly HostCommand[] = [], notes: readonly HostNote[] = []): StepResult {
  return { state, commands, notes };
}

function ignored(state: HostState, event: HostEvent): StepResult {
  return out(state, [], [{ kind: 'ignored', event: event.kind, phase: state.phase }]);
}

function msUntil(iso: string, now: Date): number {
  return Date.parse(iso) - now.getTime();
}

function cancelMessage(s: HostState): string {
  return s.phase === 'queued' && countedCycles(s) === 0
    ? 'Cancelled before its first cycle.'
    : `Cancelled ${deadlineWhere(s)}; resume the run to finish.`;
}

function deadlineWhere(s: HostState): string {
  if (s.phase === 'queued' && countedCycles(s) === 0) return 'before its first cycle';
  if (s.phase === 'launching')
    return countedCycles(s) === 1
      ? 'while its first cycle was being started'
      : `while cycle ${s.cycle} was being started`;
  if (s.phase === 'running' || s.phase === 'fetching-log') return `during cycle ${s.cycle}`;
  if (s.phase === 'rebooting' || s.phase === 'waiting-online')
    return `while waiting for the host after cycle ${s.cycle}`;
  return `after cycle ${s.cycle}`;
}

/** "20m", "90s", "1h30m". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${sec || (!h && !m) ? `${sec}s` : ''}`;
}
