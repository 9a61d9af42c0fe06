/** Tables of the update catalog (catalog import). Filled in by migrations/0002-catalog.ts. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface CatalogTables {}
