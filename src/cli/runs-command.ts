/**
 * `patchline runs` — the runs kept in a state file, newest first: id, start, outcome, exit code,
 * hosts. So an operator can find the run to `--resume` (or whose report to write again). Reads
 * only; a missing state file is reported, not created.
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { listRuns, type RunSummary } from '../engine/index.ts';
import { openStore } from '../store/db.ts';
import { defaultStateFile } from '../store/paths.ts';

const DEFAULT_RUNS_SHOWN = 20;
/** Host names shown per run before "+N more". */
const HOSTS_SHOWN = 4;

/** Aligned text, one run per line. @example renderRuns([...]) // "RUN  STARTED  OUTCOME …" */
export function renderRuns(runs: readonly RunSummary[]): string {
  const rows = runs.map((r) => {
    const hosts =
      r.targets.slice(0, HOSTS_SHOWN).join(', ') +
      (r.targets.length > HOSTS_SHOWN ? ` +${r.targets.length - HOSTS_SHOWN} more` : '');
    return [
      r.id,
      r.startedAt.replace('T', ' ').slice(0, 19),
      r.outcome === 'running' && r.finishedAt === null ? 'unfinished' : r.outcome,
      r.exitCode === null ? '-' : String(r.exitCode),
      r.mode,
      `${r.targets.length}: ${hosts}`,
    ];
  });
  const head = ['RUN', 'STARTED (UTC)', 'OUTCOME', 'EXIT', 'MODE', 'HOSTS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

export function registerRunsCommand(program: Command): void {
  program
    .command('runs')
    .summary('list the runs kept in a state file (to find one to resume)')
    .description(
      'List the runs of a state file, newest first: id, start, outcome, exit code, mode and hosts. "unfinished" runs (cancelled, deadline, connector killed) can be continued with `patchline run --resume RUN_ID`.',
    )
    .option('--state <file>', 'state file (default: in your data directory; env PATCHLINE_STATE)')
    .option('--limit <n>', `at most this many runs (default: ${DEFAULT_RUNS_SHOWN})`)
    .option('--json', 'print JSON instead of text')
    .action(async (options: { state?: string; limit?: string; json?: boolean }) => {
      const limit = options.limit === undefined ? DEFAULT_RUNS_SHOWN : Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw usageError('USAGE_VALUE', `--limit ${options.limit}: must be a whole number of at least 1.`);
      const file = options.state ?? defaultStateFile();
      if (!existsSync(file))
        throw usageError(
          'STATE_NOT_FOUND',
          `No state file ${file}: no run was started with it. Pass the --state file your runs use.`,
          { context: { file } },
        );
      const store = await openStore(file);
      try {
        const runs = await listRuns({ store }, limit);
        if (options.json) process.stdout.write(`${JSON.stringify(runs)}\n`);
        else process.stdout.write(runs.length === 0 ? `No runs in ${file}.\n` : `${renderRuns(runs)}\n`);
      } finally {
        await store.close();
      }
    });
}
