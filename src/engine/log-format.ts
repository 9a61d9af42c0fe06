/**
 * One readable line per RunLogEvent, for the live log on a terminal or a scheduler's job output.
 * NDJSON output is `JSON.stringify(event)`; this is the human form. Pure.
 */
import type { AgentEvent } from '../domain/agent-log.ts';
import { type HostWait, type WaitReason, formatMs } from '../domain/cycle.ts';
import type { RunLogEvent } from './types.ts';

/**
 * @example formatRunLogEvent({ at: '2026-11-21T05:42:26.000Z', runId: 'r', host: 'web01', kind: 'host-back', bootId: 'b2', afterMs: 95000 })
 *   // "05:42:26 web01  back after 1m35s (boot b2)"
 */
export function formatRunLogEvent(e: RunLogEvent): string {
  const time = e.at.slice(11, 19);
  const who = e.host ? `${e.host} ` : '';
  return `${time} ${who} ${describe(e)}`;
}

function describe(e: RunLogEvent): string {
  switch (e.kind) {
    case 'run-started':
      return `run ${e.runId} ${e.resumed ? 'resumed' : 'started'}: ${e.targets.length} host(s) [${e.targets.join(', ')}], --${e.mode}, --reboot ${e.reboot}, --parallel ${e.parallel}, --max-cycles ${e.maxCycles}, --retries ${e.retries}, --reboot-timeout ${formatMs(e.rebootTimeoutMs)}${e.deadlineAt ? `, --deadline ${e.deadlineAt}` : ''}`;
    case 'cycle-launched':
      return `cycle ${e.cycle} started (pid ${e.pid})`;
    case 'launch-refused':
      return `could not start the agent (${e.hresult}): ${e.message}`;
    case 'agent-event':
      return agentLine(e.event);
    case 'stream-lost':
      return `lost the live stream of cycle ${e.cycle}; reading the agent's log instead`;
    case 'log-fetched':
      return `read the agent's log of cycle ${e.cycle} (${e.events} event(s))`;
    case 'cycle-lost':
      return `cycle ${e.cycle} lost: ${e.reason}`;
    case 'reboot-started':
      return `rebooting (${e.by === 'engine' ? 'by the connector' : 'by the agent'}: ${e.reason})`;
    case 'waiting-for-host':
      return `waiting for the host (${SEEN[e.seen]})`;
    case 'still-waiting':
      return `still waiting for ${e.waitingFor}${WAIT_WHY[e.reason]}: ${formatMs(e.waitedMs)} of ${formatMs(e.timeoutMs)} (${SEEN[e.seen]})`;
    case 'transport-error':
      return `${e.op} failed (${e.failure}): ${e.message}${e.cause && !e.message.includes(e.cause) ? ` — cause: ${e.cause}` : ''}`;
    case 'host-back':
      return `back after ${formatMs(e.afterMs)}${e.bootId ? ` (boot ${e.bootId})` : ''}`;
    case 'update-failed':
      return `${e.label} failed${e.hresult ? ` with ${e.hresult}${e.hresultName ? ` ${e.hresultName}` : ''}${e.meaning ? `: ${e.meaning}` : ''}` : ''} (attempt ${e.attempts}${e.final ? ', giving up' : ', will retry after a reboot'})`;
    case 'loop-detected':
      return e.message;
    case 'host-finished':
      return `${e.outcome.toUpperCase()} after ${e.cycles} cycle(s), ${e.reboots} reboot(s)${e.message ? `: ${e.message}` : ''}`;
    case 'stop-requested':
      return e.reason === 'cancel'
        ? 'cancel requested: stopping running agents, starting nothing new'
        : 'deadline reached: stopping running agents, starting nothing new';
    case 'run-finished':
      return `run ${e.runId} finished: ${e.outcome}, exit ${e.exitCode} (${Object.entries(e.hosts)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')})`;
  }
}

/** Why an update was left out of a pass, in words (filters.ts SKIP_REASONS and the agent's own). */
const SKIP_WORDS: Readonly<Record<string, string>> = {
  hidden: 'hidden on the host',
  optional: 'optional',
  driver: 'a driver',
  classification: 'not in --classification',
  severity: 'not in --severity',
  product: 'not in --product',
  kb: 'not in --kb',
  'exclude-kb': 'in --exclude-kb',
  'update-id': 'not in --update-id',
  'exclude-update-id': 'in --exclude-update-id',
  title: 'title not matching --title',
  'min-age': 'newer than --min-age',
  excluded: 'failed for good earlier in this run',
  loop: 'came back after being installed (loop)',
  'failed-this-cycle': 'failed in this cycle, retried after a reboot',
};

/**
 * ", 2 left out: 1 not in --kb, 1 failed in this cycle, retried after a reboot" — the reasons the
 * README promises, counted; empty when nothing was left out.
 *
 * @example leftOut([{ updateId: 'a', reason: 'kb' }]) // ", 1 left out: not in --kb"
 */
export function leftOut(skipped: readonly { readonly reason: string }[]): string {
  if (skipped.length === 0) return '';
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const parts = [...counts].map(([reason, n]) => `${skipped.length > 1 ? `${n} ` : ''}${SKIP_WORDS[reason] ?? reason}`);
  return `, ${skipped.length} left out: ${parts.join('; ')}`;
}

const SEEN: Record<HostWait['lastSeen'], string> = {
  unreachable: 'not answering',
  'same-boot': 'not rebooted yet',
  'servicing-busy': 'servicing still busy',
  nothing: 'probing',
};

const WAIT_WHY: Record<WaitReason, string> = {
  reboot: ' to come back from its reboot',
  'lost-cycle': ' to answer again',
  'unreachable-at-launch': ' to answer',
};

function agentLine(a: AgentEvent): string {
  switch (a.kind) {
    case 'cycle-started':
      return `agent ${a.agentVersion} started cycle ${a.cycle} (provider ${a.provider})`;
    case 'preflight':
      return `preflight: ${a.rebootRequired ? 'reboot pending' : 'no reboot pending'}, installer ${a.installerBusy ? 'busy' : 'idle'}`;
    case 'waiting':
      // The agent waits at most this long and goes on as soon as it can: not a fixed wait.
      return `waiting up to ${formatMs(a.seconds * 1000)}: ${a.reason === 'installer-busy' ? 'the Windows installer is busy' : a.reason}`;
    case 'scan-result':
      return `scan ${a.pass}: ${a.found.length} found, ${a.selected.length} selected${leftOut(a.skipped)}`;
    case 'progress':
      return `${a.phase} ${a.updateId ?? ''} ${a.percent}%`.replace(/\s+/g, ' ');
    case 'update-result':
      return `${a.phase} ${a.updateId}: ${a.resultCode}${a.hresult ? ` (${a.hresult})` : ''}${a.rebootRequired ? ', reboot required' : ''}`;
    case 'loop-detected':
      return `agent: update loop detected for ${a.updateIds.join(', ')}`;
    case 'warning':
      return `warning: ${a.message}${a.hresult ? ` (${a.hresult})` : ''}`;
    case 'cycle-finished':
      return `cycle finished: ${a.outcome}${a.willReboot ? ', rebooting' : ''}${a.message ? `: ${a.message}` : ''}${a.hresult ? ` (${a.hresult})` : ''}`;
    case 'rebooting':
      return 'agent: rebooting now';
  }
}
