/**
 * The live log of `patchline run`: one readable line per event (text), or NDJSON (json), and in a
 * terminal a compact per-host progress view redrawn below the log.
 *
 * The text form names updates by KB and title (learnt from each host's scan results), prints
 * download/install progress in 25 % steps so a scheduler's job output stays readable, and spells
 * out HRESULTs with their name and meaning.
 */
import type { Writable } from 'node:stream';
import type { AgentEvent } from '../domain/agent-log.ts';
import { updateLabel } from '../domain/update.ts';
import { formatRunLogEvent, type RunLogEvent } from '../engine/index.ts';
import { formatHResultForUser } from '../wua/hresult.ts';

export interface LiveLog {
  write(event: RunLogEvent): void;
  /** Clears the progress view; call before printing anything else and at the end. */
  close(): void;
}

/** NDJSON: every line is one RunLogEvent and carries the runId. */
export function jsonLog(out: Writable): LiveLog {
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

interface HostView {
  phase: string;
  detail: string;
  done: boolean;
}

export function textLog(out: Writable, options: { readonly tty: boolean; readonly color: boolean }): LiveLog {
  const labels = new Map<string, string>();
  const lastStep = new Map<string, number>();
  const hosts = new Map<string, HostView>();
  let drawnLines = 0;
  let lastDraw = 0;
  let pending: NodeJS.Timeout | null = null;
  const paint = (code: string, text: string) => (options.color ? `\x1b[${code}m${text}\x1b[0m` : text);

  const label = (id: string | null) => (id ? (labels.get(id) ?? id) : '');

  function clearView(): void {
    if (drawnLines > 0) out.write(`\x1b[${drawnLines}A\x1b[J`);
    drawnLines = 0;
  }

  function drawView(): void {
    if (!options.tty) return;
    clearView();
    const active = [...hosts.entries()].filter(([, h]) => !h.done);
    const finished = hosts.size - active.length;
    const lines = active.slice(0, VIEW_MAX_HOSTS).map(([name, h]) => `  ${paint('1', name.padEnd(12))} ${h.phase.padEnd(12)} ${h.detail}`.slice(0, (out as NodeJS.WriteStream).columns ?? 120));
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
    const view = hosts.get(e.host) ?? { phase: 'queued', detail: '', done: false };
    hosts.set(e.host, view);
    if (e.kind === 'cycle-launched') Object.assign(view, { phase: `cycle ${e.cycle}`, detail: 'starting' });
    else if (e.kind === 'reboot-started') Object.assign(view, { phase: 'rebooting', detail: e.reason });
    else if (e.kind === 'waiting-for-host') Object.assign(view, { phase: 'waiting', detail: e.seen });
    else if (e.kind === 'host-finished') Object.assign(view, { phase: e.outcome, detail: '', done: true });
    else if (e.kind === 'agent-event') {
      const a = e.event;
      if (a.kind === 'progress') Object.assign(view, { phase: a.phase, detail: `${label(a.updateId)} ${Math.round(a.percent)}%` });
      else if (a.kind === 'scan-result') Object.assign(view, { phase: 'scanned', detail: `${a.selected.length} selected` });
      else if (a.kind === 'waiting') Object.assign(view, { phase: 'waiting', detail: a.reason });
    }
  }

  function agentText(e: RunLogEvent & { kind: 'agent-event' }): string | null {
    const a: AgentEvent = e.event;
    const prefix = `${e.at.slice(11, 19)} ${e.host ?? ''}  `;
    switch (a.kind) {
      case 'scan-result': {
        for (const u of a.found) labels.set(u.updateId, updateLabel(u));
        const chosen = a.selected.map((id) => `    + ${label(id)}`);
        const skippedCount = a.skipped.length;
        const head = `${prefix}scan ${a.pass}: ${a.found.length} applicable, ${a.selected.length} selected${skippedCount ? `, ${skippedCount} left out by filters` : ''}`;
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
        if (ok) return `${prefix}${paint('32', verb)} ${label(a.updateId)}${a.rebootRequired ? ' (reboot required)' : ''}`;
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
