/**
 * The compromise checker: an adversary holding a leaf tree of some epoch — every member's path
 * keys, as a stolen data directory or a core server revoked later holds them — who sees every
 * later rekey part on the wire. It follows each stolen path through the parts as far as they go
 * and reports the group keys it reaches. Used by the real-process adversary tests
 * (test/adversary/tree-thief-kit.ts) and by the system simulation's revoked core server.
 */
import type { CipherSuite } from '../crypto/index.js';
import { KeytreeError, decodeHeader, decodePart, type LeafKeys } from '../keytree/index.js';

/** Rekey parts seen on the wire, by epoch: the signed header and every part of it seen. */
export type WireParts = ReadonlyMap<
  number,
  { readonly header: Uint8Array; readonly parts: readonly Uint8Array[] }
>;

/** The group keys (`keyIdOf` of each) the stolen paths reach through `wire`, by epoch. */
export function followStolenTree(
  suite: CipherSuite,
  stolen: readonly LeafKeys[],
  wire: WireParts,
  keyIdOf: (groupKey: Uint8Array) => string,
): Map<number, Set<string>> {
  const reached = new Map<number, Set<string>>();
  for (let keys of stolen) {
    for (;;) {
      const next = wire.get(keys.epoch + 1);
      if (next === undefined) break;
      const header = decodeHeader(next.header);
      let moved: LeafKeys | undefined;
      for (const bytes of next.parts) {
        try {
          moved = keys.processPart(suite, header, decodePart(bytes));
          break;
        } catch (e) {
          if (!(e instanceof KeytreeError)) throw e;
        }
      }
      if (moved === undefined) break;
      keys = moved;
      const id = keyIdOf(keys.groupKey());
      reached.set(keys.epoch, (reached.get(keys.epoch) ?? new Set()).add(id));
    }
  }
  return reached;
}
