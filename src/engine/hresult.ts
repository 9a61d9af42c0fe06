/** HRESULT name and meaning for reports and the live log, from the WUA/Win32 table in wua/. */
import type { DescribeHResult } from '../domain/report.ts';
import { describeHResult, parseHResult } from '../wua/hresult.ts';

export const describeForReport: DescribeHResult = (hresult) => {
  // Not an HRESULT (a provider sent garbage): the report shows the raw text alone.
  if (parseHResult(hresult) === null) return null;
  const d = describeHResult(hresult);
  return { name: d.name, meaning: d.meaning };
};
