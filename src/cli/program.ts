/**
 * Runs a commander program and turns errors into exit codes: a PatchlineError prints its code
 * and message (what to do) and exits with its exit code; anything else is an internal error (70).
 * Commander's own parse errors (`--frobnicate`, a missing value) get the same
 * `patchline: error USAGE: …` form and exit 64.
 */
import { Command, CommanderError } from 'commander';
import { EXIT, PatchlineError } from '../domain/errors.ts';

export async function runProgram(program: Command, argv: readonly string[]): Promise<void> {
  // Subcommands do not inherit settings made after they were added: apply to every command.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const command of all(program)) {
    command.exitOverride();
    command.configureOutput({ outputError: (text, write) => write(usageText(text, command)) });
  }
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    process.exitCode = exitCodeOf(error);
  }
}

/** "error: unknown option '--frobnicate'" → "patchline: error USAGE: unknown option '--frobnicate'. See `patchline run --help`." */
export function usageText(commanderText: string, command: Command): string {
  const message = commanderText.trim().replace(/^error:\s*/, '');
  const path: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) path.unshift(c.name());
  return `patchline: error USAGE: ${message}${/[.?!)]$/.test(message) ? '' : '.'} See \`${path.join(' ')} --help\`.\n`;
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) {
    // --help and --version end with code 0; every parse error is a usage error.
    if (error.exitCode === 0) return EXIT.OK;
    return EXIT.USAGE;
  }
  if (error instanceof PatchlineError) {
    process.stderr.write(`patchline: error ${error.code}: ${error.message}\n`);
    return error.exitCode;
  }
  process.stderr.write(`patchline: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
  return EXIT.INTERNAL;
}
