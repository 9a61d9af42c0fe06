/**
 * `patchline lab …`: the lab of virtual Windows hosts. `lab provider` (here) is the simulated WUA
 * provider one virtual host runs; `lab daemon` (lab-daemon-command.ts) serves every host of a
 * scenario; `lab catalog` (lab-catalog.ts) writes a signed catalog cab of a scenario. Further lab
 * subcommands register on the same `lab` command in registerLabCommand.
 */
import type { Command } from 'commander';
import { runLabProviderOnStdio } from '../lab/provider-main.ts';
import { registerLabCatalog } from './lab-catalog.ts';
import { registerLabDaemonCommand } from './lab-daemon-command.ts';
import { registerLabServeCatalog } from './lab-serve-catalog.ts';

interface ProviderOptions {
  readonly scenario: string;
  readonly host: string;
  readonly dir?: string;
  readonly hostDir?: string;
  readonly upstream: string;
}

/** Registers `patchline lab provider`. */
function registerLabProviderCommand(lab: Command): void {
  lab
    .command('provider')
    .description(
      "Simulated Windows Update provider for one virtual host, speaking Patchline's provider protocol (JSON lines) on stdin/stdout. " +
        "Started by the lab's task scheduler (through the agent); you rarely run it by hand.",
    )
    .requiredOption('--scenario <file>', 'lab scenario file (YAML or JSON)')
    .requiredOption('--host <name>', 'the virtual host, as named in the scenario (ranges expanded: web01)')
    .option('--dir <hostDir>', "the host's state directory (state.json, boot.json), e.g. LABDIR/hosts/web01")
    .option('--host-dir <hostDir>', 'same as --dir')
    .requiredOption('--upstream <url>', "the lab's fake update upstream, e.g. http://127.0.0.1:8080")
    .action(async (opts: ProviderOptions) => {
      const hostDir = opts.dir ?? opts.hostDir;
      if (hostDir === undefined)
        lab.error("error: required option '--dir <hostDir>' not specified", {
          exitCode: 64,
          code: 'commander.missingMandatoryOptionValue',
        });
      await runLabProviderOnStdio({
        scenarioPath: opts.scenario,
        hostName: opts.host,
        hostDir,
        upstreamUrl: opts.upstream,
      });
    });
}

/** Registers `patchline lab …`. */
export function registerLabCommand(program: Command): void {
  const lab = program
    .command('lab')
    .description(
      'The lab: virtual Windows hosts that behave like Windows Update, for trying Patchline without Windows.',
    );
  registerLabProviderCommand(lab);
  registerLabDaemonCommand(lab);
  registerLabCatalog(lab);
  registerLabServeCatalog(lab);
  // Other `lab` subcommands: add `registerLab…(lab)` here.
}
