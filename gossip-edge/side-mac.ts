/**
 * The MAC of a gossip side-channel datagram (address hints, address probes): HMAC-SHA256 under
 * the epoch's group key (auth.ts) over `domain ‖ the encoded fields before the tag`. Each kind
 * names its own domain, so no tag of one kind (or of an envelope) verifies as another's.
 */
import { encode, type Codec } from '../wire/index.js';
import type { MacAuthenticator } from './auth.js';

export interface SideMac<T extends { readonly epoch: number }> {
  /** The tag of `v`, or undefined when we no longer hold its epoch's key. */
  tag(auth: MacAuthenticator, v: T): Uint8Array | undefined;
  verify(auth: MacAuthenticator, v: T, tag: Uint8Array): boolean;
}

export function sideMac<T extends { readonly epoch: number }>(
  domain: string,
  fields: Codec<T>,
  maxBytes: number,
): SideMac<T> {
  const prefix = new TextEncoder().encode(domain);
  const input = (v: T): Uint8Array => {
    const body = encode(fields, v, maxBytes);
    const out = new Uint8Array(prefix.length + body.length);
    out.set(prefix);
    out.set(body, prefix.length);
    return out;
  };
  return {
    tag: (auth, v) => auth.tagBytes(v.epoch, input(v)),
    verify: (auth, v, tag) => auth.verifyBytes(v.epoch, input(v), tag),
  };
}
