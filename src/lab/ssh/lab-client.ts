/**
 * The client folder the SSH lab's connector copies to its hosts, laid out like `patchline client
 * pack` does for Windows: the agent bundle (patchline.mjs), wua.ps1, the trust roots, a node.exe
 * and a manifest of sha256 digests. The lab has no node.exe: its node.exe is a text file saying
 * so, and the lab's task scheduler starts the lab's own agent bundle (the same code) with Linux's
 * node. The copy itself — digests compared, only differing files sent — is the real SFTP path.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildManifest, MANIFEST_FILE } from '../../agent/manifest.ts';
import { ensureBundle } from '../bundle.ts';

/** The client version the lab lays out (the folder name under C:\ProgramData\Patchline). */
export const LAB_CLIENT_VERSION = 'lab';

/**
 * Lays out `<dir>/ssh-lab/client/` and returns it.
 *
 * @example const client = await labClientDir(labDir) // copy it with createSshTransport({ client: { kind: 'copy', dir: client, version: LAB_CLIENT_VERSION } })
 */
export async function labClientDir(dir: string, log: (message: string) => void = () => undefined): Promise<string> {
  const out = join(dir, 'ssh-lab', 'client');
  await mkdir(out, { recursive: true });
  const cli = await ensureBundle(dir, log);
  const bundle = cli.argv.at(-1);
  if (cli.bundled && bundle !== undefined && existsSync(bundle)) {
    await copyFile(bundle, join(out, 'patchline.mjs'));
    for (const name of await readdir(dirname(bundle)))
      if (name.endsWith('.pem')) await copyFile(join(dirname(bundle), name), join(out, name));
  } else {
    await writeFile(
      join(out, 'patchline.mjs'),
      `// lab: no bundle could be built (${cli.note ?? 'unknown reason'}); the lab runs the sources\n`,
    );
  }
  const wua = fileURLToPath(new URL('../../wua/providers/powershell/wua.ps1', import.meta.url));
  await copyFile(wua, join(out, 'wua.ps1'));
  await writeFile(
    join(out, 'node.exe'),
    'lab: stands for the node.exe an administrator supplies; the lab runs its agent with Linux node\n',
  );
  // The manifest `patchline client pack` writes, of what was laid out above (a file someone
  // leaves in the folder is not part of the client, and the transport does not copy it).
  const names = (await readdir(out)).filter(
    (name) => name === 'patchline.mjs' || name === 'wua.ps1' || name === 'node.exe' || name.endsWith('.pem'),
  );
  const manifest = await buildManifest(out, LAB_CLIENT_VERSION, names);
  await writeFile(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return out;
}
