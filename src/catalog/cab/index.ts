/**
 * Public API of the CAB reader/writer. Pure TypeScript, no system tool needed: NONE, MSZIP, LZX
 * and Quantum folders, spanned sets, embedded cabinets, header reserves (signed cabinets).
 */
export {
  openCab,
  type Cabinet,
  type CabFile,
  type CabFolder,
  type CabinetPart,
  type OpenCabOptions,
} from './cabinet.ts';
export {
  extractAll,
  extractFile,
  findMember,
  forEachMember,
  memberChunks,
  openFileStream,
  safeOutputPath,
  type ExtractAllOptions,
  type ExtractProgress,
  type ExtractReport,
  type MemberVisitOptions,
} from './extract.ts';
export { writeCab, type CabMember, type WriteCabOptions, type WriteCabResult } from './writer.ts';
export { CabError, type CabErrorCode } from './errors.ts';
export { describeCompression, type CabinetHeader } from './format.ts';
