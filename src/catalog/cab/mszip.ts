/**
 * MSZIP decoder: each CFDATA block is "CK" followed by a raw deflate stream that may refer back
 * into the previous block's 32 KiB of output, which we pass to zlib as the preset dictionary.
 */
import { inflateRawSync } from 'node:zlib';
import { corrupt } from './errors.ts';

export const MSZIP_FRAME_BYTES = 32768;
const SIGNATURE_C = 0x43;
const SIGNATURE_K = 0x4b;

export class MszipDecoder {
  private history: Buffer = Buffer.alloc(0);

  /** Inflate one block; the result is at most 32 KiB or the block is rejected. */
  decodeBlock(data: Uint8Array): Buffer {
    // Like libmspack, skip anything before the "CK" signature.
    let start = -1;
    for (let i = 0; i + 1 < data.length; i++) {
      if (data[i] === SIGNATURE_C && data[i + 1] === SIGNATURE_K) {
        start = i + 2;
        break;
      }
    }
    if (start < 0) throw corrupt('MSZIP block has no "CK" signature');
    let out: Buffer;
    try {
      out = inflateRawSync(data.subarray(start), {
        maxOutputLength: MSZIP_FRAME_BYTES,
        ...(this.history.length ? { dictionary: this.history } : {}),
      });
    } catch (error) {
      throw corrupt(`MSZIP block does not inflate (${(error as Error).message})`, {}, error);
    }
    this.history =
      out.length >= MSZIP_FRAME_BYTES ? out : Buffer.concat([this.history, out]).subarray(-MSZIP_FRAME_BYTES);
    return out;
  }
}
