/**
 * A signed LKH batch rekey without a key tree: given the departed slots of a batch in a d-ary
 * tree of height h over n leaves, the refreshed nodes are their ancestors, each wrapping its new
 * key under every non-empty child — a well-formed keytree body whose wrapped keys are zeros. The
 * split, parts, Merkle proofs, header and Ed25519 signature are keytree's and the server's real
 * ones, so the simulated leaves admit its parts with the shipped checks (gossip-items.ts) and
 * the edge relay's routing sees real part sizes. The million-leaf simulation routes these; the
 * real tree's batches go through the same path (test/gossip-edge/rekey-real.test.ts).
 */
import type { CipherSuite } from '../../crypto/index.js';
import type { SignedEpochParts } from '../../gossip-edge/index.js';
import {
  RekeySplit,
  WRAPPED_BYTES,
  encodeBody,
  encodeHeader,
  signedBytes,
  span,
  type ChildWrap,
  type EpochHeader,
  type NodeRecord,
} from '../../keytree/index.js';

/** The core server whose key signs the simulated epochs (and data stream entries). */
export interface SimSigner {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface SyntheticBatch {
  readonly group: Uint8Array;
  readonly epoch: number;
  readonly arity: number;
  readonly height: number;
  /** Slots in use: [0, n). */
  readonly n: number;
  readonly departed: readonly number[];
  /** Leaves gone in earlier batches (no wrap under them). */
  readonly gone?: (slot: number) => boolean;
}

const ZERO_WRAP = new Uint8Array(WRAPPED_BYTES);

export function syntheticEpoch(suite: CipherSuite, signer: SimSigner, b: SyntheticBatch): SignedEpochParts {
  const d = b.arity;
  const departed = new Set(b.departed);
  const leafEmpty = (slot: number): boolean => slot >= b.n || departed.has(slot) || (b.gone?.(slot) ?? false);
  // Dirty nodes per level: the departed leaves' ancestors (the root always).
  const dirty: Set<number>[] = [];
  for (let l = 0; l <= b.height; l++) dirty.push(new Set());
  dirty[b.height]!.add(0);
  for (const slot of departed)
    for (let l = 1; l <= b.height; l++) dirty[l]!.add(Math.floor(slot / span(d, l)));
  // Bottom-up: a dirty node with no non-empty child is emptied, not refreshed (no record).
  const records: NodeRecord[] = [];
  const refreshed: Set<number>[] = [new Set()];
  for (let l = 1; l <= b.height; l++) {
    const here = new Set<number>();
    for (const index of [...dirty[l]!].sort((x, y) => x - y)) {
      const wraps: ChildWrap[] = [];
      for (let c = 0; c < d; c++) {
        const child = index * d + c;
        if (child * span(d, l - 1) >= b.n) continue; // an empty subtree past the last slot
        if (l === 1 ? leafEmpty(child) : dirty[l - 1]!.has(child) && !refreshed[l - 1]!.has(child)) continue;
        const childVersion = l > 1 && refreshed[l - 1]!.has(child) ? b.epoch : 0;
        wraps.push({ child: c, childVersion, wrapped: ZERO_WRAP });
      }
      if (wraps.length === 0 && l < b.height) continue;
      here.add(index);
      records.push({ level: l, index, version: b.epoch, derivedFrom: undefined, wraps });
    }
    refreshed.push(here);
  }
  const body = { records, moves: [] };
  const ctx = { group: b.group, epoch: b.epoch, arity: d, height: b.height, rootVersion: b.epoch };
  const split = RekeySplit.plan(suite, ctx, body);
  const header: EpochHeader = {
    ...ctx,
    partCount: split.count,
    partsRoot: split.root,
    bodyDigest: suite.sha256(encodeBody(body)),
  };
  return {
    epoch: b.epoch,
    header: encodeHeader(header),
    signer: signer.publicKey,
    signature: suite.ed25519Sign(signer.seed, signedBytes(header)),
    split,
  };
}
