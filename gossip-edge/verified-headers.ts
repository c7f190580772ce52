/**
 * Rekey headers whose core-server signature this leaf already checked.
 *
 * Every rekey part of an epoch carries the same signed header (the signature covers the header,
 * whose Merkle root binds each part: keytree/leaf.ts checks a part's proof when it is applied).
 * A leaf admits every part whose subtree holds it — one per level of its path, plus copies from
 * several servers' relays — so without this it verified the same signature once per part: the
 * largest item of a leaf's CPU during a join burst. A hit needs the same signer, header bytes and
 * signature as a verified entry; the last `capacity` entries are kept.
 */
import { constantTimeEqual } from '../crypto/index.js';

interface Entry {
  readonly signer: Uint8Array;
  readonly header: Uint8Array;
  readonly signature: Uint8Array;
}

export class VerifiedHeaders {
  private readonly entries: Entry[] = [];

  constructor(private readonly capacity = 8) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError('capacity must be ≥ 1');
  }

  has(signer: Uint8Array, header: Uint8Array, signature: Uint8Array): boolean {
    for (const e of this.entries)
      if (
        constantTimeEqual(e.signature, signature) &&
        constantTimeEqual(e.header, header) &&
        constantTimeEqual(e.signer, signer)
      )
        return true;
    return false;
  }

  /** Records a triple whose signature verified (copies: the caller's buffers may be reused). */
  add(signer: Uint8Array, header: Uint8Array, signature: Uint8Array): void {
    if (this.entries.length >= this.capacity) this.entries.shift();
    this.entries.push({ signer: signer.slice(), header: header.slice(), signature: signature.slice() });
  }

  clear(): void {
    this.entries.length = 0;
  }
}
