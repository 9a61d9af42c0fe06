import type { Command } from 'commander';

/** Registers `patchline lab …`. */
export function registerLabCommand(_program: Command): void {}
