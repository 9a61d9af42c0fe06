import type { Command } from 'commander';

/** Registers `patchline run …`. */
export function registerRunCommand(_program: Command): void {}
