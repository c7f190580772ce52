/**
 * What the leaf plane reports, as small interfaces its host implements: a structured log and
 * the metrics it observes. The shipped host passes its prom-client registry (server/metrics.ts
 * satisfies these structurally); tests and the simulator pass recorders. No prom-client here.
 */

export type PlaneLogFields = Readonly<
  Record<string, string | number | boolean | undefined | readonly string[]>
>;

export interface PlaneLog {
  debug(msg: string, fields?: PlaneLogFields): void;
  info(msg: string, fields?: PlaneLogFields): void;
  warn(msg: string, fields?: PlaneLogFields): void;
  error(msg: string, fields?: PlaneLogFields): void;
}

interface GaugeLike {
  set(value: number): void;
}
interface CounterLike<L extends string = never> {
  inc(labels: Partial<Record<L, string>>, value?: number): void;
}
interface PlainCounterLike {
  inc(value?: number): void;
}
interface HistogramLike {
  observe(value: number): void;
}

/** What the leaf edge counts. */
export interface EdgeMetrics {
  readonly leafSessions: GaugeLike;
  readonly decodeFailures: CounterLike<'channel'>;
  readonly publishes: CounterLike<'result'>;
  readonly refusals: CounterLike<'port' | 'reason'>;
  readonly leafKeyRefreshes: CounterLike<'cause'>;
  readonly joins: PlainCounterLike;
  readonly dataRelayed: PlainCounterLike;
}

/** What the server plane counts besides its edge. */
export interface PlaneMetrics extends EdgeMetrics {
  readonly commitCommands: HistogramLike;
  readonly leavesExposed: GaugeLike;
  readonly leafEpoch: GaugeLike;
  readonly leafMembers: GaugeLike;
  /** Seconds from the commit that applied a batch to its release to leaves (uniform release included). */
  readonly batchRekeySeconds: HistogramLike;
  readonly batchSize: HistogramLike;
  readonly rekeyBytes: PlainCounterLike;
  readonly evictions: CounterLike<'reason'>;
}

/** What the edge relay counts (gossip-edge/gossip-relay.ts RelayStats) plus its leaves. */
export interface RelayCounters {
  readonly leaves: number;
  readonly partsRouted: number;
  readonly partsFallback: number;
  readonly dataInjected: number;
  readonly dataFallback: number;
  readonly dataPulled: number;
  readonly datagrams: number;
}
