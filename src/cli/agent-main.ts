/**
 * The entry point of the client bundle `patchline client pack` builds: only `patchline agent …`,
 * so the bundle holds the agent, the WUA client and nothing with native code (no SQLite, no ssh2)
 * — it must load on a bare Windows server from node.exe alone.
 */
import { Command } from 'commander';
import { registerAgentCommand } from './agent-command.ts';
import { runProgram } from './program.ts';

const program = new Command('patchline')
  .description('Patchline agent: runs one patch cycle on this host (started by the connector).')
  // The pack replaces this with Patchline's version at bundle time.
  .version(process.env.PATCHLINE_CLIENT_VERSION ?? '0.0.0-dev');

registerAgentCommand(program);

await runProgram(program, process.argv);
