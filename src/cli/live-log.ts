/**
 * The live log of `patchline run`: one readable line per event (text), or NDJSON (json), and in a
 * terminal a compact per-host progress view redrawn below the log.
 *
 * The text form names updates by KB and title (learnt from each host's scan results), prints
 * download/install progress in 25 % steps so a scheduler's job output stays readable, and spells
 * out HRESULTs with their name and meaning. The view shows per host its cycle, its phase (a
 * rebooting host as rebooting, not as unreachable) and the update at work with its KB first, so
 * a long title is cut rather than the KB.
 *
 * Output goes through `guardedOutput`: when stdout is a pipe that closed (`… | tee log`, then
 * Ctrl-C), writing stops quietly instead of killing the run with EPIPE.
 */
import type { AgentEvent } from '../domain/agent-log.ts';
import { updateLabel } from '../domain/update.ts';
import { formatRunLogEvent, leftOut, type RunLogEvent } from '../engine/index.ts';
import { formatHResultForUser } from '../wua/hresult.ts';

/** Where the log is written: stdout, guarded. */
export interface LogOutput {
  write(text: string): void;
  /** Terminal width, when known. */
  readonly columns?: number;
}

const guarded = new WeakMap<NodeJS.WriteStream, LogOutput>();

/**
 * Wraps stdout/stderr so that a closed pipe (EPIPE) ends the output, not the process: the run
 * goes on, its state is saved and its report written. Other write errors are reported once on
 * stderr. Idempotent per stream.
 */
export function guardedOutput(stream: NodeJS.WriteStream): LogOutput {
  const known = guarded.get(stream);
  if (known) return known;
  let gone = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (gone) return;
    gone = true;
    if (error.code !== 'EPIPE' && stream !== process.stderr)
      process.stderr.write(
        `patchline: the log output failed (${error.code ?? error.message}); the run goes on and its report is written.\n`,
      );
  });
  const out: LogOutput = {
    write(text) {
      if (!gone && !stream.destroyed) stream.write(text);
    },
    get columns() {
      return stream.columns;
    },
  };
  guarded.set(stream, out);
  return out;
}

export interface LiveLog {
  write(event: RunLogEvent): void;
  /** Clears the progress view; call before printing anything else and at the end. */
  close(): void;
}

/** NDJSON: every line is one RunLogEvent and carries the runId. */
export function jsonLog(out: LogOutput): LiveLog {
  return {
    write: (event) => out.write(`${JSON.stringify(event)}\n`),
    close: () => {},
  };
}

const PROGRESS_STEP_PERCENT = 25;
/** The progress view is redrawn at most this often. */
const REDRAW_INTERVAL_MS = 200;
/** Hosts shown in the progress view; the rest are counted. */
const VIEW_MAX_HOSTS = 12;

export interface HostView {
  /** The cycle number, 0 before the first. */
  cycle: number;
  phase: string;
  /** The update at work: "KB5044445", its percent, its title — or a short note. */
  kb: string;
  percent: number | null;
  detail: string;
  done: boolean;
}

/**
 * One line of the live view, fitted to `width`: name, cycle, phase, then the update with its KB
 * and percent before the title, so cutting the end loses only title words.
 * @example viewLine('web01', { cycle: 2, phase: 'install', kb: 'KB5044445', percent: 50, detail: '2026-11 Cumulative Update …', done: false }, 60)
 */
export function viewLine(name: string, h: HostView, width: number): string {
  const cycle = h.cycle > 0 ? `cycle ${h.cycle}` : '';
  const head = `  ${name.padEnd(12)} ${cycle.padEnd(8)} ${h.phase.padEnd(11)}`;
  const work = [h.kb, h.percent === null ? '' : `${String(Math.round(h.percent)).padStart(3)}%`, h.detail]
    .filter((x) => x !== '')
    .join(' ');
  const line = `${head} ${work}`.trimEnd();
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

/** What a reboot wait looks like from outside, in an administrator's words. */
function rebootDetail(seen: string): string {
  return seen === 'unreachable'
    ? 'down, waiting for it to come back'
    : seen === 'same-boot'
      ? 'shutting down'
      : seen === 'servicing-busy'
        ? 'back, finishing servicing'
        : 'waiting for it to come back';
}

export function textLog(out: LogOutput, options: { readonly tty: boolean; readonly color: boolean }): LiveLog {
  const labels = new Map<string, string>();
  const lastStep = new Map<string, number>();
  const hosts = new Map<string, HostView>();
  let drawnLines = 0;
  let lastDraw = 0;
  let pending: NodeJS.Timeout | null = null;
  const paint = (code: string, text: string) => (options.color ? `\x1b[${code}m${text}\x1b[0m` : text);

  const label = (id: string | null) => (id ? (labels.get(id) ?? id) : '');
  /** KB and title apart, for the view (the log line uses the whole label). */
  const kbs = new Map<string, { kb: string; title: string }>();

  function clearView(): void {
    if (drawnLines > 0) out.write(`\x1b[${drawnLines}A\x1b[J`);
    drawnLines = 0;
  }

  function drawView(): void {
    if (!options.tty) return;
    clearView();
    const active = [...hosts.entries()].filter(([, h]) => !h.done);
    const finished = hosts.size - active.length;
    const width = out.columns ?? 120;
    const lines = active.slice(0, VIEW_MAX_HOSTS).map(([name, h]) => viewLine(name, h, width));
    const more = active.length > VIEW_MAX_HOSTS ? ` (+${active.length - VIEW_MAX_HOSTS} more active)` : '';
    lines.push(paint('2', `  ${finished}/${hosts.size} hosts finished${more}`));
    out.write(`${lines.join('\n')}\n`);
    drawnLines = lines.length;
    lastDraw = Date.now();
  }

  function scheduleDraw(): void {
    if (!options.tty || pending) return;
    const wait = Math.max(0, REDRAW_INTERVAL_MS - (Date.now() - lastDraw));
    pending = setTimeout(() => {
      pending = null;
      drawView();
    }, wait);
    pending.unref();
  }

  function line(text: string): void {
    if (options.tty) clearView();
    out.write(`${text}\n`);
    if (options.tty) scheduleDraw();
  }

  function track(e: RunLogEvent): void {
    if (!e.host) return;
    const view: HostView = hosts.get(e.host) ?? {
      cycle: 0,
      phase: 'queued',
      kb: '',
      percent: null,
      detail: '',
      done: false,
    };
    hosts.set(e.host, view);
    const note = (phase: string, detail: string) => Object.assign(view, { phase, kb: '', percent: null, detail });
    if (e.kind === 'cycle-launched') Object.assign(note('starting', ''), { cycle: e.cycle });
    else if (e.kind === 'reboot-started') note('rebooting', e.reason);
    else if (e.kind === 'waiting-for-host') {
      if (e.reason === 'reboot') note('rebooting', rebootDetail(e.seen));
      else note('waiting', e.seen === 'unreachable' ? 'not answering' : e.seen);
    } else if (e.kind === 'host-back') note('back', '');
    else if (e.kind === 'host-finished') Object.assign(note(e.outcome, ''), { done: true });
    else if (e.kind === 'agent-event') {
      const a = e.event;
      if (a.kind === 'progress' && a.updateId !== null) {
        const u = kbs.get(a.updateId);
        Object.assign(view, {
          phase: a.phase === 'download' ? 'downloading' : a.phase === 'install' ? 'installing' : 'scanning',
          kb: u?.kb ?? '',
          percent: a.percent,
          detail: u?.title ?? a.updateId,
        });
      } else if (a.kind === 'progress') note('scanning', '');
      else if (a.kind === 'scan-result') {
        for (const u of a.found)
          kbs.set(u.updateId, { kb: u.kbs[0] ? `KB${u.kbs[0]}` : '', title: u.title.replace(/\s*\(KB\d+\)\s*$/, '') });
        note('scanned', `${a.selected.length} to do`);
      } else if (a.kind === 'waiting') note('waiting', a.reason);
      else if (a.kind === 'rebooting') note('rebooting', 'restart requested');
    }
  }

  function agentText(e: RunLogEvent & { kind: 'agent-event' }): string | null {
    const a: AgentEvent = e.event;
    const prefix = `${e.at.slice(11, 19)} ${e.host ?? ''}  `;
    switch (a.kind) {
      case 'scan-result': {
        for (const u of a.found) labels.set(u.updateId, updateLabel(u));
        const chosen = a.selected.map((id) => `    + ${label(id)}`);
        const head = `${prefix}scan ${a.pass}: ${a.found.length} applicable, ${a.selected.length} selected${leftOut(a.skipped)}`;
        return [head, ...chosen].join('\n');
      }
      case 'progress': {
        if (a.phase === 'search' || a.updateId === null) return null;
        const key = `${e.host}|${e.cycle}|${a.phase}|${a.updateId}`;
        const step = Math.floor(a.percent / PROGRESS_STEP_PERCENT) * PROGRESS_STEP_PERCENT;
        if ((lastStep.get(key) ?? -1) >= step) return null;
        lastStep.set(key, step);
        const verb = a.phase === 'download' ? 'downloading' : 'installing';
        const bytes = a.totalBytes ? ` (${(a.totalBytes / 1_048_576).toFixed(1)} MB)` : '';
        return `${prefix}${verb} ${label(a.updateId)} ${step}%${step === 0 ? bytes : ''}`;
      }
      case 'update-result': {
        const ok = a.resultCode === 'succeeded' || a.resultCode === 'succeededWithErrors';
        const verb = a.phase === 'download' ? 'downloaded' : 'installed';
        if (ok)
          return `${prefix}${paint('32', verb)} ${label(a.updateId)}${a.rebootRequired ? ' (reboot required)' : ''}`;
        const why = a.hresult ? `: ${formatHResultForUser(a.hresult)}` : '';
        return `${prefix}${paint('31', `${a.phase} FAILED`)} ${label(a.updateId)}${why}`;
      }
      case 'cycle-finished':
        return `${prefix}cycle finished: ${a.outcome}${a.willReboot ? ', rebooting' : ''}${a.message ? ` — ${a.message}` : ''}${a.hresult ? ` (${formatHResultForUser(a.hresult)})` : ''}`;
      case 'loop-detected':
        return `${prefix}${paint('33', 'update loop')}: ${a.updateIds.map(label).join(', ')} came back after a successful install`;
      default:
        return formatRunLogEvent(e);
    }
  }

  return {
    write(e) {
      track(e);
      let text: string | null;
      if (e.kind === 'agent-event') text = agentText(e);
      else if (e.kind === 'host-finished') {
        const colour = e.outcome === 'compliant' ? '32' : e.outcome === 'pending' ? '33' : '31';
        text = formatRunLogEvent(e).replace(e.outcome.toUpperCase(), paint(colour, e.outcome.toUpperCase()));
      } else text = formatRunLogEvent(e);
      if (text !== null) line(text);
      else scheduleDraw();
    },
    close() {
      if (pending) clearTimeout(pending);
      pending = null;
      if (options.tty) clearView();
    },
  };
}
