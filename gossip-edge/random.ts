/** The randomness a gossip node needs, injected (net/sim Rng in simulation, a seeded or OS stream live). */
export interface RandomSource {
  /** Uniform integer in [0, n), n ≥ 1. */
  int(n: number): number;
}
