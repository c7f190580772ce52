/**
 * Measures the simulation kernel's speed on the scale workload (not a test: timing belongs
 * outside tests). Usage after compiling:
 *   node dist/test/net/sim-perf.js [nodes=100000] [hops=10] [traceRing=0]
 */
import { runWorkload } from './sim-scale-workload.js';

const nodes = Number(process.argv[2] ?? 100_000);
const hops = Number(process.argv[3] ?? 10);
const traceRing = Number(process.argv[4] ?? 0);

for (let rep = 0; rep < 3; rep++) {
  const cpu0 = process.cpuUsage();
  const r = runWorkload({ nodes, hops, seed: rep + 1, traceRing });
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const mem = process.memoryUsage();
  console.log(
    JSON.stringify({
      nodes,
      messages: r.stats.sent,
      events: r.stats.events,
      traceRing,
      wallMs: Math.round(r.wallMs),
      cpuMs: Math.round(cpuMs),
      eventsPerSec: Math.round((r.stats.events / r.wallMs) * 1000),
      eventsPerCpuSec: Math.round((r.stats.events / cpuMs) * 1000),
      messagesPerSec: Math.round((r.stats.delivered / r.wallMs) * 1000),
      virtualMs: Math.round(r.now),
      heapMiB: Math.round(mem.heapUsed / 2 ** 20),
      rssMiB: Math.round(mem.rss / 2 ** 20),
      hash: r.hash,
    }),
  );
}
