/**
 * Key generation and the bridge from node KeyObjects to the WebCrypto keys @peculiar/x509
 * signs with. Ed25519 is the default: small, fast, deterministic signatures; P-256 for
 * tooling that lacks Ed25519; RSA-3072 for legacy interop.
 */
import { generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { describeKey } from '../auth/index.js';

export const KEY_ALGORITHMS = ['ed25519', 'p256', 'rsa3072'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'ed25519';

export function isKeyAlgorithm(s: string): s is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(s);
}

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function generateKeyPair(alg: KeyAlgorithm): KeyPair {
  switch (alg) {
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'rsa3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
  }
}

type WebCryptoKey = Awaited<ReturnType<typeof webcrypto.subtle.importKey>>;

/** The WebCrypto import algorithm and the X.509 signature algorithm for a key. */
export function webAlgorithmsFor(key: KeyObject): {
  importAlg: { name: string; namedCurve?: string; hash?: string };
  signAlg: { name: string; hash?: string };
} {
  const { keyKind, keyDetail } = describeKey(key);
  switch (keyKind) {
    case 'ed25519':
      return { importAlg: { name: 'Ed25519' }, signAlg: { name: 'Ed25519' } };
    case 'ec': {
      const curves: Record<string, [string, string]> = {
        prime256v1: ['P-256', 'SHA-256'],
        secp384r1: ['P-384', 'SHA-384'],
        secp521r1: ['P-521', 'SHA-512'],
      };
      const c = curves[keyDetail];
      if (!c) throw new RangeError(`unsupported EC curve ${keyDetail}`);
      return { importAlg: { name: 'ECDSA', namedCurve: c[0] }, signAlg: { name: 'ECDSA', hash: c[1] } };
    }
    case 'rsa':
      return {
        importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        signAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      };
    default:
      throw new RangeError(`unsupported key type ${keyKind}`);
  }
}

/** A non-extractable WebCrypto signing key for a node private key. */
export async function toSigningKey(privateKey: KeyObject): Promise<WebCryptoKey> {
  const { importAlg } = webAlgorithmsFor(privateKey);
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, importAlg, false, ['sign']);
}

/** A WebCrypto public key for a node public key (the subject key of a certificate). */
export async function toPublicCryptoKey(publicKey: KeyObject): Promise<WebCryptoKey> {
  const { importAlg } = webAlgorithmsFor(publicKey);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return webcrypto.subtle.importKey('spki', der, importAlg, true, ['verify']);
}
