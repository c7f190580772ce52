/**
 * What travels on the simulated network of the system simulation, and the identities both ends
 * derive from the seed. Messages are passed by reference (net/sim), never serialized: the core
 * stack's frames and the leaf protocol's frames are the real bytes, the rest models a TLS link.
 */
import type { CipherSuite } from '../../crypto/index.js';
import { Rng } from '../../net/sim/index.js';
import type { LeafCert } from '../../leaf-plane/index.js';

/**
 * core   a core stack frame between two servers (GroupMember.receive)
 * open   leaf → server: a TLS handshake on link `link` (the leaf's certificate is implied by its node)
 * accept server → leaf: the handshake completed; the leaf may join
 * frame  a leaf protocol frame on an up link, either way, numbered per link and direction: a TLS
 *        link delivers in order or breaks, so a receiver that sees a number skipped (a frame lost
 *        or overtaken on the simulated network) closes the link; a repeated number is a duplicate
 * frames leaf → server: several frames written at once (one TLS record; an adversary's burst), numbered as one
 * close  the link is gone (a FIN or RST): sent by either end, and by a server to a frame on a link it does not know
 */
export type SystemMessage =
  | { readonly kind: 'core'; readonly bytes: Uint8Array }
  | { readonly kind: 'open'; readonly link: number }
  | { readonly kind: 'accept'; readonly link: number }
  | { readonly kind: 'frame'; readonly link: number; readonly seq: number; readonly bytes: Uint8Array }
  | {
      readonly kind: 'frames';
      readonly link: number;
      readonly seq: number;
      readonly frames: readonly Uint8Array[];
    }
  | { readonly kind: 'close'; readonly link: number };

export const SIM_GROUP = 'sim';

/**
 * The wall clock the plane and the sessions are handed: whole milliseconds since the Unix epoch,
 * as Date.now() gives a real host (leases and commands carry it as an unsigned integer), starting
 * at a fixed date so that runs replay.
 */
export const wallClock = (virtualMs: number): number => 1_800_000_000_000 + Math.floor(virtualMs);
export const serverName = (i: number): string => `s${i}`;
export const leafName = (i: number): string => `leaf-${i}`;

/** A leaf's certificate as the leaf port would verify it: name, serial and fingerprint from the seed. */
export function leafCertOf(seed: number, i: number): LeafCert {
  const rng = Rng.seeded(seed).fork('leaf-cert').fork(i);
  const serial = Array.from(rng.bytes(8), (b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return { name: leafName(i), serial, fingerprint: rng.bytes(32) };
}

/** A core server's certificate serial and rekey-signing seed, from the seed. */
export function serverIdentityOf(seed: number, i: number): { serial: string; signingSeed: Uint8Array } {
  const rng = Rng.seeded(seed).fork('server-cert').fork(i);
  const serial = Array.from(rng.bytes(8), (b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return { serial, signingSeed: rng.bytes(32) };
}

/**
 * The RFC 8446 exporter of simulated link `link`: both ends derive it from a per-link secret
 * drawn from the seed, with the label as HKDF info, as two TLS endpoints derive the same bytes.
 */
export function linkExporter(
  suite: CipherSuite,
  seed: number,
  link: number,
  length: number,
  label: string,
): Uint8Array {
  const secret = Rng.seeded(seed).fork('link-exporter').fork(link).bytes(32);
  return suite.hkdf(secret, new Uint8Array(0), new TextEncoder().encode(label), length);
}

/** The real suite drawing its randomness from the seed, so fresh keys replay with it. */
export function seededSuite(suite: CipherSuite, rng: Rng): CipherSuite {
  return Object.create(suite, { randomBytes: { value: (len: number) => rng.bytes(len) } }) as CipherSuite;
}

/** What a receiver does with frame number `seq` when it expects `next`. */
export function frameOrder(seq: number, next: number): 'deliver' | 'duplicate' | 'broken' {
  return seq === next ? 'deliver' : seq < next ? 'duplicate' : 'broken';
}
