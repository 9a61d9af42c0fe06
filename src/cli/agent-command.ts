import type { Command } from 'commander';

/** Registers `patchline agent …`. */
export function registerAgentCommand(_program: Command): void {}
