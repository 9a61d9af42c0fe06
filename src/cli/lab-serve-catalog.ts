/**
 * `patchline lab serve-catalog FILE`: serves a cab at Microsoft's catalog path on 127.0.0.1, like
 * download.windowsupdate.com does (Last-Modified, ETag, HEAD, Range), so `catalog sync --source`
 * can be tried without the internet. Options make it misbehave on purpose, to see resume and
 * signature checks at work.
 */
import type { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { startCatalogUpstream } from '../lab/catalog-upstream.ts';

export function registerLabServeCatalog(lab: Command): void {
  lab
    .command('serve-catalog')
    .description(
      "Serve a wsusscn2.cab at Microsoft's path on 127.0.0.1 (a fake upstream for `catalog sync --source`). Runs until Ctrl-C.",
    )
    .argument('<file>', 'the cab to serve (e.g. one written by `patchline lab catalog`)')
    .option(
      '--drop-at <fraction>',
      'drop the connection after this fraction (0–1) of the first download, to try resuming',
    )
    .option('--tamper-at <offset>', 'serve the file with the byte at this offset flipped, to try the signature check')
    .option('--ignore-conditionals', 'answer 200 to If-None-Match/If-Modified-Since, as Microsoft sometimes does')
    .addHelpText(
      'after',
      `
Example:
  patchline lab catalog examples/lab/patch-night.yaml --out /tmp/lab.cab
  patchline lab serve-catalog /tmp/lab.cab &          # prints the URL to sync from
  patchline catalog sync --source <URL> --trust /tmp/lab.cab.root.pem`,
    )
    .action(async (file: string, options: { dropAt?: string; tamperAt?: string; ignoreConditionals?: boolean }) => {
      const dropAt = options.dropAt === undefined ? undefined : Number(options.dropAt);
      if (dropAt !== undefined && !(dropAt > 0 && dropAt < 1))
        throw usageError('USAGE_VALUE', `--drop-at ${options.dropAt}: a fraction between 0 and 1, e.g. 0.4.`);
      const tamperAt = options.tamperAt === undefined ? undefined : Number(options.tamperAt);
      if (tamperAt !== undefined && !(Number.isInteger(tamperAt) && tamperAt >= 0))
        throw usageError('USAGE_VALUE', `--tamper-at ${options.tamperAt}: a byte offset (a whole number).`);
      const upstream = await startCatalogUpstream({
        file,
        ...(dropAt !== undefined ? { dropAtFraction: dropAt, dropTimes: 1 } : {}),
        ...(tamperAt !== undefined ? { tamperAtOffset: tamperAt } : {}),
        ...(options.ignoreConditionals ? { ignoreConditionals: true } : {}),
      });
      process.stdout.write(`${upstream.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await upstream.close();
    });
}
