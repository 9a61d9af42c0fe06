/** Every migration, in order. Names sort lexically; never rename or edit a released one. */
import type { Migration } from 'kysely';
import * as runs from './0001-runs.ts';
import * as catalog from './0002-catalog.ts';
import * as server from './0003-server.ts';
import * as catalogCves from './0004-catalog-cves.ts';
import * as hostUpdatesNoUpdateIndex from './0005-host-updates-no-update-index.ts';
import * as hostInventoryDigest from './0006-host-inventory-digest.ts';

export const migrations: Record<string, Migration> = {
  '0001-runs': runs,
  '0002-catalog': catalog,
  '0003-server': server,
  '0004-catalog-cves': catalogCves,
  '0005-host-updates-no-update-index': hostUpdatesNoUpdateIndex,
  '0006-host-inventory-digest': hostInventoryDigest,
};
