/**
 * What the CLI adds to the engine's report before writing it: warnings for filter values that
 * matched nothing on any host, and (in a lab run, where the scenario knows every prerequisite)
 * the updates a host never got because a prerequisite failed, listed as `blocked`. Used for a
 * run that just ended and for a finished run whose report a resume rewrites.
 */
import { compileFilters, unmatchedFilterValues, type UnmatchedFilter, type UpdateFilters } from '../domain/filters.ts';
import { blockedByPrerequisites } from '../domain/prerequisites.ts';
import type { RunReport } from '../domain/report.ts';
import type { UpdateRecord } from '../domain/update.ts';
import { waitingOnPrerequisites } from '../lab/applicability.ts';
import { initialHostState } from '../lab/host-state.ts';
import { loadScenario } from '../lab/scenario.ts';
import { toUpdateRecord } from '../lab/update-record.ts';
import type { Store } from '../store/db.ts';
import { RunsRepo } from '../store/runs-repo.ts';
import type { RunMeta } from './run-resume.ts';

export interface CompletedReport extends RunReport {
  readonly warnings?: readonly ({ readonly kind: 'filter-unmatched' } & UnmatchedFilter)[];
}

/** Every update the run's scans found, from its saved event log (so a resumed run counts earlier scans too). */
export async function scannedUpdates(store: Store, runId: string): Promise<UpdateRecord[]> {
  const events = await new RunsRepo(store.db).getEvents(runId);
  const found: UpdateRecord[] = [];
  for (const e of events) {
    const data = e.data as { kind?: string; found?: UpdateRecord[] } | null;
    if (e.kind === 'agent' && data?.kind === 'scan-result' && Array.isArray(data.found)) found.push(...data.found);
  }
  return found;
}

export async function completeReport(
  store: Store,
  runId: string,
  report: RunReport,
  meta: RunMeta,
  filters: UpdateFilters,
): Promise<{ report: CompletedReport; unmatched: UnmatchedFilter[] }> {
  const unmatched = unmatchedFilterValues(filters, await scannedUpdates(store, runId));
  const withBlocked = await addPrerequisiteBlocked(report, meta, filters);
  return {
    report:
      unmatched.length > 0
        ? { ...withBlocked, warnings: unmatched.map((u) => ({ kind: 'filter-unmatched', ...u })) }
        : withBlocked,
    unmatched,
  };
}

/** The lab scenario of the run, if it has one: its catalog knows every prerequisite. */
function scenarioOf(meta: RunMeta): string | null {
  const tc = meta.transportConfig;
  return tc?.kind === 'lab' ? tc.scenario : tc?.kind === 'ssh' ? (tc.lab?.scenario ?? null) : null;
}

async function addPrerequisiteBlocked(report: RunReport, meta: RunMeta, filters: UpdateFilters): Promise<RunReport> {
  const path = scenarioOf(meta);
  if (path === null) return report;
  const scenario = await loadScenario(path);
  const now = new Date();
  const skip = compileFilters(filters, now);
  const selected = (u: UpdateRecord) => skip(u) === null;
  const hosts = report.hosts.map((h) => {
    const host = scenario.hostByName.get(h.name);
    if (!host || h.updates.every((u) => u.result !== 'failed' && u.result !== 'blocked')) return h;
    const candidates = waitingOnPrerequisites(scenario, host, initialHostState(host, now, scenario.timeScale)).map(
      (entry) => ({
        record: toUpdateRecord(
          entry,
          { isDownloaded: false, isHidden: false, eulaAccepted: true },
          { size: 0, downloadUrls: [] },
          scenario.byKey,
        ),
        requires: entry.requires.map((key) => scenario.byKey.get(key)!.updateId),
      }),
    );
    const added = blockedByPrerequisites(h.updates, candidates, selected);
    if (added.length === 0) return h;
    // After the failed and blocked entries, as the report orders them.
    const at = h.updates.findIndex((u) => u.result !== 'failed' && u.result !== 'blocked');
    const updates = at < 0 ? [...h.updates, ...added] : [...h.updates.slice(0, at), ...added, ...h.updates.slice(at)];
    return { ...h, updates };
  });
  return { ...report, hosts };
}
