/** Every migration, in order. Names sort lexically; never rename or edit a released one. */
import type { Migration } from 'kysely';
import * as runs from './0001-runs.ts';
import * as catalog from './0002-catalog.ts';

export const migrations: Record<string, Migration> = {
  '0001-runs': runs,
  '0002-catalog': catalog,
};
