/** Byte helpers that every backend and caller may use; no backend dependency. */

/**
 * Compares two byte strings in time that depends only on their lengths, never on their
 * contents (for MACs, tags, key fingerprints). Different lengths compare unequal.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * Best-effort zeroization of secrets the caller owns. JavaScript gives no guarantee that no
 * other copy exists (engines may move or copy buffers), so this narrows exposure, it does not
 * eliminate it.
 */
export function wipe(...arrays: ReadonlyArray<Uint8Array | Uint32Array | undefined>): void {
  for (const a of arrays) a?.fill(0);
}

/** Concatenates byte strings into one fresh `Uint8Array`. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Copies any byte view (e.g. a pooled node `Buffer`) into a standalone `Uint8Array`, so callers never see neighbouring pool memory through `.buffer`. */
export function ownBytes(view: Uint8Array): Uint8Array {
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}
