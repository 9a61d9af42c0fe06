/**
 * `patchline lab catalog SCENARIO --out wsusscn2.cab [--extra-updates N]`: writes a signed lab
 * catalog of a scenario's updates (plus N filler updates to reach real sizes) and the lab root
 * certificate beside it as FILE.root.pem, to pass to `catalog import --trust`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { usageError } from '../domain/errors.ts';
import { defaultCatalogPacker } from '../lab/catalog-gen-packer.ts';
import { generateCatalog } from '../lab/catalog-gen.ts';
import { loadScenario } from '../lab/scenario.ts';

const wholeNumber = (flag: string, value: string | undefined, min: number): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw usageError('USAGE', `${flag} must be a whole number of at least ${min}, not "${value}".`);
  return n;
};

const sizeText = (bytes: number): string =>
  bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;

/** Registers `lab catalog` on the `lab` command. */
export function registerLabCatalog(lab: Command): void {
  lab
    .command('catalog')
    .description("Write a signed, wsusscn2-shaped catalog of a scenario's updates (and FILE.root.pem, its lab root).")
    .argument('<scenario>', 'scenario file (YAML/JSON)')
    .requiredOption('--out <file>', 'the cab to write, e.g. wsusscn2.cab')
    .option('--extra-updates <n>', 'add N generated filler updates (to reach real catalog sizes)', '0')
    .option('--shards <n>', 'number of package2…N.cab shards (default: one per 5000 revisions)')
    .option('--upstream-url <url>', "base URL of payload files (the lab upstream); default Microsoft's download host")
    .option('--root-dir <dir>', 'keep the lab root and signing key here and reuse them on the next run')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  patchline lab catalog examples/lab/small.yaml --out /tmp/wsusscn2.cab
  patchline catalog import /tmp/wsusscn2.cab --trust /tmp/wsusscn2.cab.root.pem`,
    )
    .action(
      async (
        scenarioFile: string,
        options: {
          out: string;
          extraUpdates: string;
          shards?: string;
          upstreamUrl?: string;
          rootDir?: string;
          json?: boolean;
        },
      ) => {
        const scenario = await loadScenario(scenarioFile);
        const result = await generateCatalog(
          scenario,
          {
            out: resolve(options.out),
            extraUpdates: wholeNumber('--extra-updates', options.extraUpdates, 0),
            shards: wholeNumber('--shards', options.shards, 1),
            upstreamUrl: options.upstreamUrl,
            rootDir: options.rootDir,
            onProgress: (p) => {
              if (!options.json && process.stderr.isTTY)
                process.stderr.write(`\r\x1b[K${p.phase} ${p.done}/${p.total}`);
            },
          },
          defaultCatalogPacker(),
        );
        if (!options.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
        process.stdout.write(
          options.json
            ? `${JSON.stringify(result)}\n`
            : `Wrote ${result.out} (${result.updates} updates, ${result.shards} shards, package.xml ${sizeText(result.packageXmlBytes)}).\nLab root certificate: ${result.rootPemFile} (pass it to catalog import --trust).\n`,
        );
      },
    );
}
