/**
 * verifyCabSignature: is this cabinet (wsusscn2.cab, or a lab catalog) signed, intact, and signed
 * by someone Patchline trusts? Reads the header and the signature blob, hashes the body as a
 * stream, and throws a PatchlineError whose code says which of those failed.
 *
 * Order of checks: cabinet header → signature structure, signature value and timestamp (cheap,
 * from the blob alone) → file digest (one streaming pass) → certificate chain at the signing time.
 */
import { DerFormatError, timeOf } from './der.ts';
import { signedDigestRanges } from './cab-layout.ts';
import { digestFileRanges } from './cab-digest.ts';
import { attributeValue, type SignerInfoParts } from './signed-data.ts';
import { certsFromPem, type CertInfo } from './certificate.ts';
import { parseSignature, readCabSignatureBlob, type ParsedSignature } from './signature-blob.ts';
import { buildChain } from './chain.ts';
import { checkSigner, SignerCheckError } from './signer-check.ts';
import { checkTimestamp, type TimestampOutcome } from './timestamp.ts';
import { OID, type DigestName } from './oids.ts';
import { SIGNATURE_ERROR, signatureError } from './errors.ts';
import { defaultIntermediates } from '../roots/default-roots.ts';
import { usageError } from '../../domain/errors.ts';

export interface VerifyCabOptions {
  /** PEM texts of the trusted roots (a text may hold several certificates). */
  readonly roots: readonly string[];
  /** The current time: used when the signature carries neither a timestamp nor a signing time. Default: now. */
  readonly at?: Date;
  /** Extra PEM texts that may complete a chain but are not trusted. Default: Microsoft's shipped intermediates. */
  readonly intermediates?: readonly string[];
  readonly signal?: AbortSignal;
}

export interface CabSigner {
  readonly subject: string;
  readonly issuer: string;
  /** Upper-case hex. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export type ValidationTimeSource = 'timestamp' | 'signing-time' | 'now';

export interface CabSignatureInfo {
  readonly signer: CabSigner;
  /** Subjects from the signer up to the trusted root. */
  readonly chain: readonly string[];
  readonly digestAlgorithm: DigestName;
  /** Hex digest of the signed bytes of the file. */
  readonly digest: string;
  /** The timestamp's time when timestamped, else the signed signing-time attribute, if any. */
  readonly signingTime?: Date;
  /** True only for a timestamp that verified and chains to a trusted root. */
  readonly timestamped: boolean;
  /** The time the chain was validated at, and where it came from. */
  readonly validatedAt: Date;
  readonly validatedAtSource: ValidationTimeSource;
  /** Things that did not fail the check but an operator may want to know (ignored timestamp, nested signatures). */
  readonly warnings: readonly string[];
}

/** Certificates from caller-supplied PEM texts (e.g. `--trust FILE`); unreadable ones are a usage error. */
function readTrustPems(pems: readonly string[], role: string): CertInfo[] {
  return pems.flatMap((pem, i) => {
    let certs: CertInfo[];
    try {
      certs = certsFromPem(pem);
    } catch (e) {
      const reason = (e as Error).message;
      throw usageError(
        'TRUST_CERT_INVALID',
        `${role} #${i + 1} cannot be read (${reason}): give a PEM file of X.509 certificates.`,
        {
          cause: e,
        },
      );
    }
    if (certs.length === 0) {
      throw usageError(
        'TRUST_CERT_INVALID',
        `${role} #${i + 1} holds no "BEGIN CERTIFICATE" block: give a PEM file of X.509 certificates.`,
      );
    }
    return certs;
  });
}

/**
 * Verifies the Authenticode signature of a cabinet and the certificate chain up to `roots`.
 * Chain validity is checked at the trusted timestamp's time when there is one, otherwise at the
 * signed signing-time attribute, otherwise at `at` (now).
 *
 * @example
 *   const info = await verifyCabSignature('wsusscn2.cab', { roots: defaultRoots() });
 *   info.signer.subject // 'CN=Microsoft Corporation, …'
 * @throws PatchlineError CATALOG_UNREADABLE | CATALOG_NOT_CABINET | CATALOG_UNSIGNED |
 *   CATALOG_TAMPERED | CATALOG_SIGNATURE_INVALID | CATALOG_UNTRUSTED; TRUST_CERT_INVALID (exit 64)
 *   for an unreadable root or intermediate PEM
 */
export async function verifyCabSignature(path: string, options: VerifyCabOptions): Promise<CabSignatureInfo> {
  const { loc, blob } = await readCabSignatureBlob(path);
  switch (loc.kind) {
    case 'not-cabinet':
      throw signatureError(SIGNATURE_ERROR.notCabinet, path, loc.reason);
    case 'unsigned':
      throw signatureError(SIGNATURE_ERROR.unsigned, path, loc.reason);
    case 'truncated':
      throw signatureError(SIGNATURE_ERROR.invalid, path, loc.reason);
    case 'trailing-data':
    case 'unsigned-fields-altered':
      throw signatureError(SIGNATURE_ERROR.tampered, path, loc.reason);
    case 'signed':
      break;
  }
  if (!blob) throw signatureError(SIGNATURE_ERROR.invalid, path, `the signature record claims ${loc.size} bytes`);

  const warnings: string[] = [];
  const trustRoots = readTrustPems(options.roots, 'trusted root');
  const intermediates = readTrustPems(options.intermediates ?? defaultIntermediates(), 'intermediate');
  let parsed: ParsedSignature;
  let signerCert: CertInfo;
  let timestamp: TimestampOutcome;
  let signedTime: Date | undefined;
  try {
    parsed = parseSignature(blob);
    const signer = parsed.signedData.signerInfos[0] as SignerInfoParts; // parseSignature insists on exactly one
    signerCert = checkSigner(
      signer,
      parsed.certs,
      parsed.indirect.hashedBytes,
      OID.spcIndirectDataContent,
      'signature',
    );
    timestamp = checkTimestamp(signer, parsed.certs, { intermediates, roots: trustRoots });
    const signingTimeNode = attributeValue(signer.signedAttrs, OID.signingTime);
    signedTime = signingTimeNode ? timeOf(signingTimeNode, 'signingTime') : undefined;
    if (signer.unsignedAttrs.has(OID.spcNestedSignature)) {
      warnings.push('the file carries nested (additional) signatures; only the primary signature was checked');
    }
  } catch (e) {
    if (e instanceof DerFormatError || e instanceof SignerCheckError) {
      throw signatureError(SIGNATURE_ERROR.invalid, path, e.message, e);
    }
    throw e;
  }

  const { indirect } = parsed;
  const actual = await digestFileRanges(path, signedDigestRanges(loc.offset), indirect.digestAlgorithm, options.signal);
  if (!actual.equals(Buffer.from(indirect.digest))) {
    const signed = Buffer.from(indirect.digest).toString('hex');
    const reason = `its ${indirect.digestAlgorithm} digest is ${actual.toString('hex')}, the signature says ${signed}`;
    throw signatureError(SIGNATURE_ERROR.tampered, path, reason);
  }

  let validatedAt: Date;
  let validatedAtSource: ValidationTimeSource;
  if (timestamp.kind === 'trusted') {
    validatedAt = timestamp.time;
    validatedAtSource = 'timestamp';
  } else {
    if (timestamp.kind === 'untrusted') warnings.push(`timestamp ignored: ${timestamp.reason}`);
    validatedAt = signedTime ?? options.at ?? new Date();
    validatedAtSource = signedTime ? 'signing-time' : 'now';
  }

  const chain = buildChain(
    signerCert,
    [...parsed.certs, ...intermediates],
    trustRoots,
    validatedAt,
    OID.ekuCodeSigning,
  );
  if (!chain.ok) {
    const ignored = timestamp.kind === 'untrusted' ? ` (its timestamp was ignored: ${timestamp.reason})` : '';
    throw signatureError(
      SIGNATURE_ERROR.untrusted,
      path,
      `signed by "${signerCert.subject}", but ${chain.reason}${ignored}`,
    );
  }
  const signingTime = timestamp.kind === 'trusted' ? timestamp.time : signedTime;
  return {
    signer: {
      subject: signerCert.subject,
      issuer: signerCert.issuer,
      serial: signerCert.serial,
      notBefore: signerCert.notBefore,
      notAfter: signerCert.notAfter,
    },
    chain: chain.chain.map((c) => c.subject),
    digestAlgorithm: indirect.digestAlgorithm,
    digest: actual.toString('hex'),
    ...(signingTime ? { signingTime } : {}),
    timestamped: timestamp.kind === 'trusted',
    validatedAt,
    validatedAtSource,
    warnings,
  };
}
