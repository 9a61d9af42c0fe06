/**
 * `patchline run` — the connector job: patch the named servers to completion, then exit with a
 * documented code. This file only declares the command line; run-job.ts does the work.
 */
import { Command, Option } from 'commander';
import { parseRunOptions, type RawRunOptions } from './run-options.ts';
import { readListFile, runJob } from './run-job.ts';
import { addSshRunOptions } from './ssh-run.ts';
import { addWindowsRunOptions } from './windows-run.ts';

const HELP_AFTER = `
Examples:
  # The lab patch night (virtual hosts; nothing else to install):
  patchline run --lab examples/lab/patch-night.yaml --report night.json

  # Security and critical updates only, on three servers, rebooting when needed:
  patchline run web01 web02 sql01 --lab examples/lab/patch-night.yaml \\
      --install --reboot if-required --classification "Security Updates,Critical Updates"

  # What would be installed, changing nothing:
  patchline run --lab examples/lab/patch-night.yaml --scan --report pending.json

  # OpCon-style lists: one KB per line, "KB" optional, # comments:
  patchline run --lab night.yaml --kb @approved.txt --exclude-kb @blocked.txt

  # Continue a run that was cancelled, killed or hit its deadline (\`patchline runs\` lists them):
  patchline run --resume 20261121-0512-7f3a1c --state /var/lib/patchline/state.sqlite

  # A scheduler job re-run with --resume added: options equal to the saved ones are accepted.
  patchline run web01 --lab night.yaml --kb @approved.txt --resume 20261121-0512-7f3a1c

Exit codes (the highest that applies wins, in this order):
  5  cancelled (SIGINT/SIGTERM)          -> the resume command is printed
  4  the --deadline was reached          -> the resume command is printed
  3  some host unreachable, or not back within --reboot-timeout (resumable too)
  2  some update failed (HRESULT and meaning in the log and the report)
  0  every target done: nothing matching left (install), or the scan/download completed
  1  node itself failed before patchline ran (not installed, a missing module)
  64 usage error (bad option, unreadable list, invalid scenario, unknown host): nothing started
  70 internal error (the report is still written; the run can be resumed)

Durations take a unit: 90s, 20m, 1h30m. The run id is printed first and in every JSON log line.`;

export function registerRunCommand(program: Command): void {
  const run = program
    .command('run')
    .summary('patch servers to completion (the connector job)')
    .description(
      'Patch the named servers until nothing matching the filters is left: on each target the agent scans, downloads and installs, the host reboots, the job waits for it and repeats. With no target names, every host of the lab scenario.',
    )
    .argument('[targets...]', 'host names (default: every host of the --lab scenario)')
    .option('--lab <scenario>', 'patch the virtual hosts of a lab scenario file (YAML or JSON)')
    .addOption(new Option('--transport <name>', 'how targets are reached').choices(['lab', 'ssh', 'windows']))
    .addOption(
      new Option('--scan', 'only report what is applicable; change nothing').conflicts(['download', 'install']),
    )
    .addOption(new Option('--download', 'download what is applicable; install nothing').conflicts(['scan', 'install']))
    .addOption(new Option('--install', 'download and install (default)').conflicts(['scan', 'download']))
    .option('--reboot <policy>', 'never | if-required | always (default: if-required)')
    .option('--classification <list>', 'comma list, e.g. "Security Updates,Critical Updates"')
    .option('--severity <list>', 'comma list of Critical, Important, Moderate, Low, none')
    .option('--product <list>', 'comma list of product names, e.g. "Windows Server 2022"')
    .option('--kb <list|@file>', 'only these KBs (comma list, or @FILE with one per line)')
    .option('--exclude-kb <list|@file>', 'never these KBs')
    .option('--update-id <list|@file>', 'only these update ids (GUIDs)')
    .option('--exclude-update-id <list|@file>', 'never these update ids')
    .option('--title <regex>', 'only updates whose title matches (case-insensitive)')
    .option('--include-optional', 'also optional (BrowseOnly) updates')
    .option('--include-drivers', 'also driver updates')
    .option('--min-age <days>', 'only updates released at least this many days ago')
    .option('--max-cycles <n>', 'cycles (scan-install-reboot) per host at most (default: 5)')
    .option('--retries <n>', 'retries of a failed update, each after a reboot (default: 1)')
    .option('--reboot-timeout <duration>', 'how long a host may take to come back (default: 20m)')
    .option('--deadline <duration>', 'stop starting work this long after the start; exit 4')
    .option('--installer-busy-timeout <duration>', 'how long to wait for a busy Windows installer (default: 30m)')
    .addOption(new Option('--parallel <n>', 'hosts patched at once (default: 10)').conflicts('serial'))
    .option('--serial', 'one host at a time')
    .option('--offline-cab <file|url>', 'scan against this wsusscn2.cab (copied to each target first)')
    .option('--report <file>', 'write the JSON report here (also on failure and cancellation)')
    .option('--log-format <format>', 'text | json (NDJSON, every line with the runId) (default: text)')
    .option('--no-progress', 'no live per-host view, even in a terminal')
    .option('--state <file>', 'state file (default: in your data directory; env PATCHLINE_STATE)')
    .option('--resume <runId>', 'continue an unfinished run with its saved options (`patchline runs` lists them)')
    .option(
      '--lab-inprocess',
      'run the lab agents inside the lab daemon, not one process each (large fleets, benchmarks)',
    )
    .addHelpText('after', HELP_AFTER);
  addWindowsRunOptions(addSshRunOptions(run)).action(async (targets: string[], raw: RawRunOptions) => {
    const parsed = parseRunOptions(targets, raw, readListFile);
    process.exitCode = await runJob(parsed);
  });
}
