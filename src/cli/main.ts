/**
 * `patchline` — the command-line entry point. One composition root: each command module
 * registers itself on the program; nothing here does work of its own.
 *
 * Only the command named on the command line is loaded (`patchline agent cycle` is started for
 * every cycle on every target and must not pay for the server, the catalog and the console); with
 * no command, `--help` or an unknown one, every command is registered so help and errors list all.
 */
import { Command } from 'commander';
import { runProgram } from './program.ts';

type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  run: async () => (await import('./run-command.ts')).registerRunCommand,
  runs: async () => (await import('./runs-command.ts')).registerRunsCommand,
  catalog: async () => {
    const [{ registerCatalogCommand }, { registerCatalogSync }] = await Promise.all([
      import('./catalog-command.ts'),
      import('./catalog-sync-command.ts'),
    ]);
    return (program) => registerCatalogCommand(program, { extraSubcommands: [registerCatalogSync] });
  },
  agent: async () => (await import('./agent-command.ts')).registerAgentCommand,
  lab: async () => (await import('./lab-command.ts')).registerLabCommand,
  client: async () => (await import('./client-pack-command.ts')).registerClientCommand,
  server: async () => (await import('./server-command.ts')).registerServerCommand,
};

const program = new Command('patchline')
  .description('Patch Windows servers to completion, from any scheduler.')
  .version('0.1.0');

const named = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const register of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) register(program);

await runProgram(program, process.argv);
