/**
 * `server-tls` suite: the `server` suite with the gossip tier off — servers push every rekey and
 * message to each of their leaves over TLS (the path the edge relay replaced), and leaves hold no
 * UDP socket, so between events they cost no CPU. That is what lets 10^4 leaves share this
 * 2-core machine with three servers (--full). Every batch is then one TLS push per leaf from
 * its server and one epoch every leaf processes, so batches are cut every 2 s: the join burst
 * of 10^4 leaves would otherwise spend the machine on O(population × batches) rekey work.
 * Rekey latency is read as batch applied → all leaves (the trigger also waits for the cut).
 */
import type { BenchSuite } from '../harness.js';
import { serverBench } from './server.js';

const suite: BenchSuite = {
  name: 'server-tls',
  description:
    'keyglass server processes, leaves on TLS only: admission rate, rekey latency to 10^4 leaves (--full), publish→deliver',
  run: serverBench({
    transport: 'tls',
    batchIntervalMs: 2000,
    stages: (ctx) => (ctx.quick ? [50, 200] : ctx.full ? [100, 1000, 10_000] : [100, 1000]),
  }),
};
export default suite;
