/**
 * Parameters of a simulated network link and their precompiled form.
 *
 * One-way delay = latencyMs + jitter, where jitter is uniform on [0, jitterMs) or exponential
 * with mean jitterMs ('exponential' gives the long tail real networks have). Jitter alone
 * reorders messages; `reorder` additionally holds a message back by up to `reorderDelayMs`
 * so later ones overtake it even on a jitter-free link. `loss` drops, `duplicate` delivers a
 * second copy with its own independent delay. There is no bandwidth model: messages never
 * queue behind each other.
 */

export type JitterShape = 'uniform' | 'exponential';

export interface LinkParams {
  /** Fixed part of the one-way delay, ms (≥ 0). */
  readonly latencyMs: number;
  /** Scale of the random part of the delay, ms (≥ 0). */
  readonly jitterMs: number;
  readonly jitter: JitterShape;
  /** Probability a message is lost, [0, 1]. */
  readonly loss: number;
  /** Probability a message is delivered twice, [0, 1]. */
  readonly duplicate: number;
  /** Probability a message is held back by an extra uniform [0, reorderDelayMs) delay, [0, 1]. */
  readonly reorder: number;
  /** Largest extra hold-back of a reordered message, ms (≥ 0). */
  readonly reorderDelayMs: number;
}

export const DEFAULT_LINK: LinkParams = Object.freeze({
  latencyMs: 1,
  jitterMs: 0,
  jitter: 'uniform',
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMs: 5,
});

const TWO_32 = 4294967296;

/** LinkParams with probabilities turned into uint32 thresholds, so the hot path compares integers. */
export interface CompiledLink {
  readonly params: LinkParams;
  readonly latencyMs: number;
  readonly jitterMs: number;
  readonly exponential: boolean;
  /** A draw u (uint32) means "lost" iff u < lossBelow; likewise for the others. */
  readonly lossBelow: number;
  readonly dupBelow: number;
  readonly reorderBelow: number;
  readonly reorderDelayMs: number;
}

function checkProbability(name: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`link ${name} must be in [0, 1], got ${p}`);
}

function checkMs(name: string, ms: number): void {
  if (!(ms >= 0 && Number.isFinite(ms)))
    throw new RangeError(`link ${name} must be finite and ≥ 0, got ${ms}`);
}

/** Merges `patch` over `base`, validates, and precompiles. */
export function compileLink(base: LinkParams, patch: Partial<LinkParams> = {}): CompiledLink {
  const p: LinkParams = Object.freeze({ ...base, ...patch });
  checkMs('latencyMs', p.latencyMs);
  checkMs('jitterMs', p.jitterMs);
  checkMs('reorderDelayMs', p.reorderDelayMs);
  checkProbability('loss', p.loss);
  checkProbability('duplicate', p.duplicate);
  checkProbability('reorder', p.reorder);
  if (p.jitter !== 'uniform' && p.jitter !== 'exponential')
    throw new RangeError(`bad jitter shape ${p.jitter}`);
  return {
    params: p,
    latencyMs: p.latencyMs,
    jitterMs: p.jitterMs,
    exponential: p.jitter === 'exponential',
    lossBelow: p.loss * TWO_32,
    dupBelow: p.duplicate * TWO_32,
    reorderBelow: p.reorder * TWO_32,
    reorderDelayMs: p.reorderDelayMs,
  };
}
