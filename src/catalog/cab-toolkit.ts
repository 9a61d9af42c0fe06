/**
 * The production CabToolkit: Authenticode verification against Microsoft's roots plus any
 * `--trust` roots (src/catalog/authenticode/), and the pure-TS CAB reader (source-cab.ts).
 */
import { verifyCabSignature } from './authenticode/verify.ts';
import { defaultRoots } from './roots/default-roots.ts';
import type { CabToolkit } from './import-file.ts';
import { cabSource } from './source-cab.ts';

export function defaultCabToolkit(): CabToolkit {
  return {
    async verify(file, { trustPems, signal }) {
      const info = await verifyCabSignature(file, { roots: [...defaultRoots(), ...trustPems], signal });
      return { signerSubject: info.signer.subject };
    },
    open: (file, { tempDir }) => cabSource(file, { tempDir }),
  };
}
