/**
 * The store's tables, as Kysely types. Each area keeps its tables in its own file; this joins them.
 */
import type { RunTables } from './schema-runs.ts';
import type { CatalogTables } from './schema-catalog.ts';
import type { ServerTables } from './schema-server.ts';

export interface Database extends RunTables, CatalogTables, ServerTables {}
