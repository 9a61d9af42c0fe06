/**
 * Writes the run report atomically (temp file + rename), so a scheduler that picks the file up
 * never reads half of it, and a crash mid-write leaves the previous report whole.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PatchlineError } from '../domain/errors.ts';

export async function writeReportFile(file: string, report: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`);
    await rename(tmp, file);
  } catch (cause) {
    throw new PatchlineError('REPORT_UNWRITABLE', `Cannot write the report to ${file}: ${(cause as Error).message}. The run itself finished; its state is kept, and "patchline run --resume <id> --report <other file>" can write the report again.`, { cause, context: { file } });
  }
}
