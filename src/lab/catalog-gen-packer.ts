/**
 * The generator's CatalogPacker on Patchline's own modules: MSZIP cabinets from
 * src/catalog/cab/ and Authenticode signing with a lab root from src/catalog/authenticode/.
 * (Microsoft's catalog uses LZX; the reader handles both, the writer only MSZIP.)
 */
import { createLabRoot, signCab } from '../catalog/authenticode/index.ts';
import { writeCab } from '../catalog/cab/index.ts';
import type { CatalogPacker } from './catalog-gen.ts';

export function defaultCatalogPacker(): CatalogPacker {
  return {
    async writeCab(out, members, { compress }) {
      await writeCab(
        out,
        members.map((m) => ({ name: m.name, source: Buffer.isBuffer(m.data) ? m.data : m.data.path })),
        { compression: compress ? 'mszip' : 'none' },
      );
    },
    async sign(input, output, dir) {
      const lab = await createLabRoot({ dir });
      await signCab(input, output, { certPem: lab.certPem, keyPem: lab.keyPem, chainPems: [] });
      return { rootPem: lab.rootPem };
    },
  };
}
