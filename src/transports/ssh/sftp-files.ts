/**
 * The file operations the SSH transport does over SFTP, as promises: read a file from a byte
 * offset (the agent's log, read on after a dropped connection), write a file atomically (temp
 * name, then rename: a half-copied client is never seen under its real name), make folders.
 * Paths are SFTP paths as Windows' OpenSSH shows them: `/C:/ProgramData/Patchline/…`.
 */
import type { SFTPWrapper } from 'ssh2';
import { randomBytes } from 'node:crypto';

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7). */
const SSH_FX_NO_SUCH_FILE = 2;
/** One SFTP read request; servers cap a read at 32–256 KB anyway. */
const READ_CHUNK_BYTES = 64 * 1024;

function code(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}

export function isNoSuchFile(error: unknown): boolean {
  return code(error) === SSH_FX_NO_SUCH_FILE || /no such file/i.test((error as Error).message ?? '');
}

/**
 * Reads `path` from `offset` to its current end (at most `maxBytes`). Null when it does not exist.
 *
 * @example const chunk = await readFrom(sftp, '/C:/ProgramData/Patchline/logs/r7-web01-1.jsonl', 4096, 1 << 20)
 */
export async function readFrom(
  sftp: SFTPWrapper,
  path: string,
  offset: number,
  maxBytes: number,
): Promise<Buffer | null> {
  let handle: Buffer;
  try {
    handle = await new Promise<Buffer>((resolve, reject) =>
      sftp.open(path, 'r', (e, h) => (e ? reject(e) : resolve(h))),
    );
  } catch (error) {
    if (isNoSuchFile(error)) return null;
    throw error;
  }
  try {
    const size = await new Promise<number>((resolve, reject) =>
      sftp.fstat(handle, (e, s) => (e ? reject(e) : resolve(s.size))),
    );
    const end = Math.min(size, offset + maxBytes);
    const chunks: Buffer[] = [];
    let position = offset;
    while (position < end) {
      const length = Math.min(READ_CHUNK_BYTES, end - position);
      const buffer = Buffer.alloc(length);
      const read = await new Promise<number>((resolve, reject) =>
        sftp.read(handle, buffer, 0, length, position, (e, n) => (e ? reject(e) : resolve(n))),
      );
      if (read <= 0) break;
      chunks.push(buffer.subarray(0, read));
      position += read;
    }
    return Buffer.concat(chunks);
  } finally {
    await new Promise<void>((resolve) => sftp.close(handle, () => resolve()));
  }
}

/** `mkdir -p` over SFTP. */
export async function makeDirs(sftp: SFTPWrapper, dir: string): Promise<void> {
  const parts = dir.split('/').filter((p) => p !== '');
  let path = '';
  for (const part of parts) {
    path += `/${part}`;
    // A drive root (`/C:`) always exists.
    if (/^\/[A-Za-z]:$/.test(path)) continue;
    const exists = await new Promise<boolean>((resolve) => sftp.stat(path, (e) => resolve(!e)));
    if (exists) continue;
    await new Promise<void>((resolve, reject) =>
      sftp.mkdir(path, (e) => {
        // Made meanwhile by a concurrent call: fine.
        if (e) sftp.stat(path, (e2) => (e2 ? reject(e) : resolve()));
        else resolve();
      }),
    );
  }
}

/** Writes `data` to `path` under a temporary name, then renames it into place. */
export async function writeAtomic(sftp: SFTPWrapper, path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await new Promise<void>((resolve, reject) => sftp.writeFile(tmp, data, (e) => (e ? reject(e) : resolve())));
  // SFTP v3 rename fails when the target exists (Windows' server too): remove it first.
  await new Promise<void>((resolve, reject) =>
    sftp.unlink(path, (e) => (e && !isNoSuchFile(e) ? reject(e) : resolve())),
  );
  await new Promise<void>((resolve, reject) => sftp.rename(tmp, path, (e) => (e ? reject(e) : resolve())));
}
