/** A member's committed core-key state and the small helpers around it. */
import { KEY_BYTES, type CipherSuite } from '../../crypto/index.js';
import { LINEAGE_BYTES } from './messages.js';
import { leaf, type MemberId, type NodeId, type SymTree } from './tree.js';

export interface CoreKeyState {
  readonly me: MemberId;
  /** Increases with every committed rekey; after a merge, past every merged lineage's epoch. */
  readonly epoch: number;
  /**
   * Names the committed tree: random per commit, so members holding the same tag hold the
   * same tree. The view layer carries it in its flush / join messages (see `lineageTag`).
   */
  readonly lineage: Uint8Array;
  readonly tree: SymTree;
  /** Keys of the inner nodes on this member's path, by node id. */
  readonly pathKeys: ReadonlyMap<NodeId, Uint8Array>;
  /** The core key: the root's key (a fresh local key while the member is alone). */
  readonly groupKey: Uint8Array;
}

/** The state of a member alone in its view (a fresh server, or the last survivor). */
export function soloState(suite: CipherSuite, me: MemberId, epoch = 0): CoreKeyState {
  return {
    me,
    epoch,
    lineage: suite.randomBytes(LINEAGE_BYTES),
    tree: leaf(me),
    pathKeys: new Map(),
    groupKey: suite.randomBytes(KEY_BYTES),
  };
}

/**
 * The tag a member reports to the view layer: undefined for a solo tree, which has nothing to
 * contribute to a merge (the member enters as a singleton and receives fresh keys).
 */
export function lineageTag(state: CoreKeyState): Uint8Array | undefined {
  return state.tree.kind === 'leaf' ? undefined : state.lineage;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
