/**
 * The HRESULTs the simulated provider answers with (names and meanings from the Windows SDK;
 * see shared/testdata/wua/error-codes.json), and WUA's rule for an operation's overall result.
 */
import type { OperationResultCode, PerUpdateResult } from '../wua/protocol.ts';

export const HR = {
  /** Bad search string. */
  WU_E_INVALID_CRITERIA: '0x80240032',
  /** No operation was required (used for the not-yet-supported offline scan). */
  WU_E_NOOP: '0x8024000C',
  /** Install while another install runs or a mandatory restart is pending. */
  WU_E_INSTALL_NOT_ALLOWED: '0x80240016',
  WU_E_NOT_APPLICABLE: '0x80240017',
  /** An exclusive update cannot be installed with other updates at the same time. */
  WU_E_EXCLUSIVE_INSTALL_CONFLICT: '0x80240019',
  WU_E_ALL_UPDATES_FAILED: '0x80240022',
  /** Empty update collection. */
  WU_E_NO_UPDATE: '0x80240024',
  WU_E_DM_INCORRECTFILEHASH: '0x80246002',
  WU_E_DM_NOTDOWNLOADED: '0x80246007',
  /** HRESULT_FROM_WIN32(ERROR_INTERNET_TIMEOUT). */
  ERROR_INTERNET_TIMEOUT: '0x80072EE2',
  /** HRESULT_FROM_WIN32(ERROR_INTERNET_CANNOT_CONNECT). */
  ERROR_INTERNET_CANNOT_CONNECT: '0x80072EFD',
  E_FILE_NOT_FOUND: '0x80070002',
  E_INVALIDARG: '0x80070057',
  /** Unspecified failure: the lab itself broke (a bug, a full disk). */
  E_FAIL: '0x80004005',
} as const;

/** WU_E_PT_HTTP_STATUS_* by HTTP status (400–505); anything else is WU_E_PT_HTTP_STATUS_NOT_MAPPED. */
const HTTP_STATUS_HRESULTS: Readonly<Record<number, string>> = {
  400: '0x80244016',
  401: '0x80244017',
  403: '0x80244018',
  404: '0x80244019',
  405: '0x8024401A',
  407: '0x8024401B',
  408: '0x8024401C',
  409: '0x8024401D',
  410: '0x8024401E',
  500: '0x8024401F',
  501: '0x80244020',
  502: '0x80244021',
  503: '0x80244022',
  504: '0x80244023',
  505: '0x80244024',
};

/** The HRESULT WUA's download manager reports for an HTTP error status. */
export function httpStatusHResult(status: number): string {
  return HTTP_STATUS_HRESULTS[status] ?? '0x8024402B';
}

/**
 * WUA's overall result for per-update results: succeeded when all succeeded, failed when all
 * failed, succeededWithErrors otherwise; aborted wins. The overall HRESULT of a failed
 * operation is the update's own when there was one update, WU_E_ALL_UPDATES_FAILED otherwise.
 */
export function overallResult(
  results: readonly PerUpdateResult[],
  aborted: boolean,
): { resultCode: OperationResultCode; hresult: string | null } {
  if (aborted) return { resultCode: 'aborted', hresult: null };
  const failed = results.filter((r) => r.resultCode === 'failed');
  if (failed.length === 0) return { resultCode: 'succeeded', hresult: null };
  if (failed.length < results.length) return { resultCode: 'succeededWithErrors', hresult: null };
  return {
    resultCode: 'failed',
    hresult: results.length === 1 ? (failed[0]?.hresult ?? HR.WU_E_ALL_UPDATES_FAILED) : HR.WU_E_ALL_UPDATES_FAILED,
  };
}
