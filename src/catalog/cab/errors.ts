/**
 * Errors raised by the CAB reader and writer. Every corrupt or hostile input ends in a `CabError`
 * with code CAB_CORRUPT (the bytes are wrong), CAB_UNSUPPORTED (valid but a feature we do not
 * decode) or CAB_INCOMPLETE (a member continues into a cabinet of a spanned set that is missing).
 */
import { PatchlineError } from '../../domain/errors.ts';

export type CabErrorCode =
  'CAB_CORRUPT' | 'CAB_UNSUPPORTED' | 'CAB_INCOMPLETE' | 'CAB_NOT_FOUND' | 'CAB_SOURCE_CHANGED';

export class CabError extends PatchlineError {
  constructor(code: CabErrorCode, message: string, context: Record<string, string | number> = {}, cause?: unknown) {
    super(code, message, { context, cause });
  }
}

/** The bytes of a cabinet are malformed; the message says where. */
export function corrupt(message: string, context: Record<string, string | number> = {}, cause?: unknown): CabError {
  return new CabError(
    'CAB_CORRUPT',
    `${message}. The cabinet is damaged or truncated: download it again.`,
    context,
    cause,
  );
}

export function unsupported(message: string, context: Record<string, string | number> = {}): CabError {
  return new CabError('CAB_UNSUPPORTED', message, context);
}
