/**
 * `patchline` — the command-line entry point. One composition root: each command module
 * registers itself on the program; nothing here does work of its own.
 */
import { Command } from 'commander';
import { registerAgentCommand } from './agent-command.ts';
import { registerCatalogCommand } from './catalog-command.ts';
import { registerCatalogSync } from './catalog-sync-command.ts';
import { registerClientCommand } from './client-pack-command.ts';
import { registerLabCommand } from './lab-command.ts';
import { registerRunCommand } from './run-command.ts';
import { registerRunsCommand } from './runs-command.ts';
import { registerServerCommand } from './server-command.ts';
import { runProgram } from './program.ts';

const program = new Command('patchline')
  .description('Patch Windows servers to completion, from any scheduler.')
  .version('0.1.0');

registerRunCommand(program);
registerRunsCommand(program);
registerCatalogCommand(program, { extraSubcommands: [registerCatalogSync] });
registerAgentCommand(program);
registerLabCommand(program);
registerClientCommand(program);
registerServerCommand(program);

await runProgram(program, process.argv);
