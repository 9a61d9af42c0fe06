import type { Command } from 'commander';

/** Registers `patchline catalog …`. */
export function registerCatalogCommand(_program: Command): void {}
