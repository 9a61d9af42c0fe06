/**
 * The user-facing errors of catalog signature checks: one stable code per way a cabinet can fail,
 * each message saying what happened and what to do. Only verify.ts and sign.ts throw them.
 */
import { PatchlineError } from '../../domain/errors.ts';

export const SIGNATURE_ERROR = {
  /** The file cannot be opened or read. */
  unreadable: 'CATALOG_UNREADABLE',
  /** Not a cabinet at all (an HTML error page, a truncated download …). */
  notCabinet: 'CATALOG_NOT_CABINET',
  unsigned: 'CATALOG_UNSIGNED',
  tampered: 'CATALOG_TAMPERED',
  untrusted: 'CATALOG_UNTRUSTED',
  invalid: 'CATALOG_SIGNATURE_INVALID',
  /** signCab was given something it cannot sign (bad input cabinet, key or certificate). */
  signFailed: 'CAB_SIGN_FAILED',
} as const;
export type SignatureErrorCode = (typeof SIGNATURE_ERROR)[keyof typeof SIGNATURE_ERROR];

function message(code: SignatureErrorCode, file: string, reason: string): string {
  switch (code) {
    case SIGNATURE_ERROR.unreadable:
      return `${file} cannot be read (${reason}). Check the path and its permissions.`;
    case SIGNATURE_ERROR.notCabinet:
      return `${file} is not a cabinet file (${reason}). Download the catalog again; check that the URL serves wsusscn2.cab and not an error page.`;
    case SIGNATURE_ERROR.unsigned:
      return `${file} has no Authenticode signature (${reason}). Patchline imports only signed catalogs: download wsusscn2.cab again from Microsoft, or sign a lab catalog with the lab root.`;
    case SIGNATURE_ERROR.tampered:
      return `${file} was modified after it was signed (${reason}) — download it again.`;
    case SIGNATURE_ERROR.untrusted:
      return `${file} has an intact signature that Patchline does not trust: ${reason}. Use a catalog signed by Microsoft, or pass the root certificate that issued this signer with --trust FILE.`;
    case SIGNATURE_ERROR.invalid:
      return `${file} has a malformed or invalid Authenticode signature (${reason}). Download it again; if that does not help, the file is not a genuine signed catalog.`;
    case SIGNATURE_ERROR.signFailed:
      return `cannot sign ${file}: ${reason}.`;
  }
}

export function signatureError(
  code: SignatureErrorCode,
  file: string,
  reason: string,
  cause?: unknown,
): PatchlineError {
  return new PatchlineError(code, message(code, file, reason), {
    context: { file },
    ...(cause === undefined ? {} : { cause }),
  });
}
