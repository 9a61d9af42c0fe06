/** Tables of connector runs (engine). Filled in by migrations/0001-runs.ts. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface RunTables {}
