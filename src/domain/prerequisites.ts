/**
 * Updates a host never got because a prerequisite of theirs failed. Windows Update does not offer
 * an update whose prerequisites are not installed, so a scan never shows it and the report would
 * not name it at all. Where the prerequisites are known (a lab scenario's catalog), the updates the
 * host needs but for a failed or blocked prerequisite are listed as `blocked`, with the reason.
 *
 * @example blockedByPrerequisites(report.updates, candidates, selected)
 *   // [{ updateId: '…', kb: '5044445', result: 'blocked', message: 'Not offered: it requires KB5044444 …' }]
 */
import type { UpdateReport } from './report.ts';
import type { UpdateRecord } from './update.ts';

/** An update the host would need were its prerequisites installed. */
export interface PrerequisiteCandidate {
  readonly record: UpdateRecord;
  /** UpdateIDs that must all be installed first. */
  readonly requires: readonly string[];
}

const label = (u: { kb: string | null; title: string }): string => (u.kb ? `KB${u.kb}` : u.title);

/**
 * The blocked entries to add to one host's updates: each candidate the run's filters select, not
 * already listed, with a prerequisite that failed or is itself blocked (transitively, in order).
 */
export function blockedByPrerequisites(
  listed: readonly UpdateReport[],
  candidates: readonly PrerequisiteCandidate[],
  selected: (u: UpdateRecord) => boolean,
): UpdateReport[] {
  const stoppers = new Map<string, { label: string; why: string }>();
  for (const u of listed) {
    if (u.result === 'failed') stoppers.set(u.updateId, { label: label(u), why: 'failed' });
    else if (u.result === 'blocked') stoppers.set(u.updateId, { label: label(u), why: 'is blocked' });
  }
  const known = new Set(listed.map((u) => u.updateId));
  const added: UpdateReport[] = [];
  let grew = true;
  while (grew) {
    grew = false;
    for (const c of candidates) {
      if (known.has(c.record.updateId) || !selected(c.record)) continue;
      const stopper = c.requires.map((id) => stoppers.get(id)).find((s) => s !== undefined);
      if (!stopper) continue;
      const kb = c.record.kbs[0] ?? null;
      added.push({
        updateId: c.record.updateId,
        kb,
        title: c.record.title,
        result: 'blocked',
        hresult: null,
        message: `Not offered: it requires ${stopper.label}, which ${stopper.why}; Windows Update offers it once that is installed. Run again once that is fixed.`,
        attempts: 0,
        attemptResults: [],
      });
      known.add(c.record.updateId);
      stoppers.set(c.record.updateId, { label: label({ kb, title: c.record.title }), why: 'is blocked' });
      grew = true;
    }
  }
  return added;
}
