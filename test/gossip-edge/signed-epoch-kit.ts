/**
 * A real signed epoch for relay tests: a key tree of `n` leaves whose first batch removes
 * `departed`, its header signed by `signer` — what a core server hands its edge relay.
 */
import type { CipherSuite } from '../../crypto/index.js';
import type { SignedEpochParts } from '../../gossip-edge/index.js';
import { LeafKeyTree, derivedKeySource, encodeHeader, signedBytes } from '../../keytree/index.js';

export function signedEpoch(
  suite: CipherSuite,
  n: number,
  departed: readonly number[],
  signerSeed: Uint8Array = new Uint8Array(32).fill(4),
): { signed: SignedEpochParts; groupKey0: Uint8Array } {
  const tree = LeafKeyTree.create(
    {
      suite,
      keySource: derivedKeySource(suite, new Uint8Array(32).fill(3)),
      group: new TextEncoder().encode('g'),
      arity: 4,
    },
    n,
  );
  const groupKey0 = tree.groupKey()!.slice();
  const res = tree.applyBatch(departed.map((slot) => ({ kind: 'leave' as const, slot })));
  const signed: SignedEpochParts = {
    epoch: res.epoch,
    header: encodeHeader(res.message.header),
    signer: suite.ed25519PublicKey(signerSeed),
    signature: suite.ed25519Sign(signerSeed, signedBytes(res.message.header)),
    split: res.split,
  };
  return { signed, groupKey0 };
}
