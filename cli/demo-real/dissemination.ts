/** How the demo's rekeys and data reached the leaves: UDP gossip vs the TLS fallback. */
import type { LeafClient } from '../../leaf-sdk/index.js';

export interface DisseminationFigures {
  readonly rekeysByGossip: number;
  readonly rekeysByTls: number;
  readonly dataByGossip: number;
  readonly dataByTls: number;
  /** Gossip copies of items a leaf already had (suppressed by id), over leaves still linked. */
  readonly duplicates: number;
  /** Gossip datagrams the leaves sent (pushes, digests, pulls, view maintenance). */
  readonly datagrams: number;
  readonly catchUps: number;
  /** Data messages delivered by pulls of a server's data stream (gaps gossip did not fill). */
  readonly dataByPull: number;
}

export function disseminationOf(clients: readonly LeafClient[]): DisseminationFigures {
  let rekeysByGossip = 0;
  let rekeysByTls = 0;
  let dataByGossip = 0;
  let dataByTls = 0;
  let duplicates = 0;
  let datagrams = 0;
  let catchUps = 0;
  let dataByPull = 0;
  for (const c of clients) {
    rekeysByGossip += c.stats.gossipRekeys;
    rekeysByTls += c.stats.tlsRekeys;
    dataByGossip += c.stats.gossipData;
    dataByTls += c.stats.tlsData;
    catchUps += c.stats.catchUps;
    dataByPull += c.stats.pulledData;
    duplicates += c.gossip?.counters.duplicates ?? 0;
    datagrams += c.gossip?.counters.totalSent() ?? 0;
  }
  return {
    rekeysByGossip,
    rekeysByTls,
    dataByGossip,
    dataByTls,
    duplicates,
    datagrams,
    catchUps,
    dataByPull,
  };
}

export function renderDissemination(f: DisseminationFigures): string {
  const pct = (a: number, b: number): string => `${((100 * a) / Math.max(1, a + b)).toFixed(1)} %`;
  return (
    `rekeys ${f.rekeysByGossip} by gossip / ${f.rekeysByTls} by TLS (${pct(f.rekeysByGossip, f.rekeysByTls)} gossip, ` +
    `${f.catchUps} catch-ups); data ${f.dataByGossip} by gossip / ${f.dataByTls} by TLS ` +
    `(${pct(f.dataByGossip, f.dataByTls)} gossip) / ${f.dataByPull} pulled from a server; ${f.duplicates} duplicates suppressed; ${f.datagrams} gossip datagrams`
  );
}
