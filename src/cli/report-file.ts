/**
 * The report file of `patchline run`: checked before the run starts, written atomically at the end.
 *
 * Written through a temp file + rename, so a scheduler that picks the file up never reads half of
 * it, and a crash mid-write leaves the previous report whole. The temp file is removed when the
 * write fails. `checkReportTarget` refuses a directory or an unwritable place before anything
 * starts (exit 64) — a patch night must not end with "exit 0" and no report.
 */
import { accessSync, constants, existsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PatchlineError, usageError } from '../domain/errors.ts';

const tempName = (file: string): string => `${file}.${process.pid}.tmp`;

/**
 * Refuses a --report path that cannot be written: a directory, a read-only file, or a place
 * whose nearest existing folder is not writable. Leaves nothing behind.
 */
export function checkReportTarget(file: string): void {
  const full = resolve(file);
  const refuse = (why: string, cause?: unknown) =>
    usageError(
      'REPORT_PATH_INVALID',
      `--report ${file}: ${why}. Name a file in a writable folder; nothing was started.`,
      { cause, context: { file } },
    );
  if (existsSync(full)) {
    if (statSync(full).isDirectory()) throw refuse('is a directory');
    try {
      accessSync(full, constants.W_OK);
    } catch (cause) {
      throw refuse('the file is not writable', cause);
    }
  }
  let folder = dirname(full);
  while (!existsSync(folder)) folder = dirname(folder);
  if (!statSync(folder).isDirectory()) throw refuse(`${folder} is not a directory`);
  if (folder !== dirname(full)) {
    try {
      accessSync(folder, constants.W_OK);
    } catch (cause) {
      throw refuse(`the folder ${folder} is not writable`, cause);
    }
    return;
  }
  // The folder exists: try the temp file the real write will use (access() is not enough on some mounts).
  const probe = tempName(full);
  try {
    writeFileSync(probe, '');
  } catch (cause) {
    throw refuse(
      `cannot create a file in ${folder} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`,
      cause,
    );
  }
  unlinkSync(probe);
}

export async function writeReportFile(file: string, report: unknown): Promise<void> {
  const tmp = tempName(file);
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(tmp, `${JSON.stringify(report, null, 2)}\n`);
    await rename(tmp, file);
  } catch (cause) {
    await unlink(tmp).catch((error: NodeJS.ErrnoException) => {
      // ENOENT: the temp file was never created. Anything else is worth knowing.
      if (error.code !== 'ENOENT') process.emitWarning(`patchline: could not remove ${tmp}: ${error.message}`);
    });
    throw new PatchlineError(
      'REPORT_UNWRITABLE',
      `Cannot write the report to ${file}: ${(cause as Error).message}. The run's state is kept; "patchline run --resume RUN_ID --report OTHER_FILE" writes the report again.`,
      { cause, context: { file } },
    );
  }
}
