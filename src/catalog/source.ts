/**
 * Where an import reads a catalog from. One narrow interface so the importer does not care
 * whether the members come from a signed wsusscn2.cab (source-cab.ts, through src/catalog/cab/)
 * or from a directory someone already unpacked (source-dir.ts: the test fixture's layout).
 */

export interface ShardBlob {
  /** Member name inside the shard, as stored ("c\\123456" or "l/en/123456"). */
  readonly name: string;
  readonly bytes: Buffer;
}

export interface CatalogSource {
  /** For messages and the version row: the file or directory path. */
  readonly description: string;
  /** index.xml text. */
  indexXml(signal?: AbortSignal): Promise<string>;
  /** package.xml bytes, streamed. */
  packageXml(signal?: AbortSignal): AsyncIterable<Buffer>;
  /** Every member of one shard cab (named as in index.xml), streamed one by one. */
  shardBlobs(shardName: string, signal?: AbortSignal): AsyncIterable<ShardBlob>;
  /** Releases temp files. Idempotent. */
  close(): Promise<void>;
}
