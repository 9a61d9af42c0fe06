/**
 * Product names for `run --product` where no lab scenario knows them: the catalog imported into
 * the state file does (`patchline catalog sync|import`). A misspelt product would select nothing
 * and end every host "compliant"; refuse it before anything starts. Without a state file or a
 * catalog, nothing can be checked here and the run reports unmatched values at its end instead.
 */
import { existsSync } from 'node:fs';
import { catalogStatus, categoryNames } from '../catalog/query.ts';
import { usageError } from '../domain/errors.ts';
import { openStore } from '../store/db.ts';

/**
 * The given products as the catalog spells them, or a usage error naming the unknown ones; the
 * given list unchanged when there is no catalog to check against.
 * @example await checkCatalogProducts('state.sqlite', ['windows server 2022']) // ['Windows Server 2022']
 */
export async function checkCatalogProducts(stateFile: string, products: readonly string[]): Promise<readonly string[]> {
  if (products.length === 0 || !existsSync(stateFile)) return products;
  const store = await openStore(stateFile);
  try {
    if ((await catalogStatus(store.db)).current === null) return products;
    const known = new Map((await categoryNames(store.db, 'Product')).map((n) => [n.toLowerCase(), n]));
    const unknown = products.filter((p) => !known.has(p.toLowerCase()));
    if (unknown.length > 0) {
      const words = unknown
        .join(' ')
        .toLowerCase()
        .split(/\s+/)
        .filter((w) => w.length > 2);
      const near = [...known.values()].filter((k) => words.some((w) => k.toLowerCase().includes(w))).slice(0, 10);
      throw usageError(
        'USAGE_VALUE',
        `--product: ${unknown.map((p) => `"${p}"`).join(', ')} ${unknown.length === 1 ? 'is not a product' : 'are not products'} of the catalog imported into ${stateFile}.${near.length > 0 ? ` Did you mean: ${near.join(', ')}?` : ''} \`patchline catalog search --product NAME\` checks a name.`,
      );
    }
    return products.map((p) => known.get(p.toLowerCase())!);
  } finally {
    await store.close();
  }
}
