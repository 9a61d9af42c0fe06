/**
 * Public surface of catalog signature handling: verify a cabinet's Authenticode signature, sign
 * one (lab), make a lab CA, and inspect a signature for diagnostics.
 */
export {
  verifyCabSignature,
  type VerifyCabOptions,
  type CabSignatureInfo,
  type CabSigner,
  type ValidationTimeSource,
} from './verify.ts';
export { signCab, type SignCabOptions, type SignCabResult } from './sign.ts';
export {
  createLabRoot,
  type LabRoot,
  type CreateLabRootOptions,
  LAB_ROOT_FILE,
  LAB_SIGNING_CERT_FILE,
  LAB_SIGNING_KEY_FILE,
} from './lab-root.ts';
export { inspectCabSignature, type CabSignatureInspection } from './inspect.ts';
export { issueCertificate, type CertificateSpec } from './certificate-builder.ts';
export { SIGNATURE_ERROR, type SignatureErrorCode } from './errors.ts';
export { AUTHENTICODE_RESERVE_BYTES, RESERVE_INSERT_BYTES } from './cab-layout.ts';
export type { DigestName } from './oids.ts';
export { defaultRoots, defaultIntermediates } from '../roots/default-roots.ts';
