/** Public surface of the content cache (src/content/). */
export {
  createContentCache,
  DEFAULT_CLEANUP_GRACE_MS,
  DEFAULT_MAX_ATTEMPTS,
  type CachedFile,
  type CleanupReport,
  type ContentCache,
  type ContentCacheOptions,
  type ContentEvent,
  type ContentStats,
} from './cache.ts';
export {
  normalizeSpec,
  specFromCatalogFile,
  toHex,
  isHexDigest,
  type ContentFileSpec,
  type NormalizedSpec,
} from './digest.ts';
export { memoryContentIndex, jsonFileContentIndex, type ContentIndex, type ContentRecord } from './index-store.ts';
export {
  serveContent,
  parseRange,
  IMMUTABLE_CACHE_CONTROL,
  type ServeRequest,
  type ServeResult,
  type ServableFile,
} from './serve.ts';
