/**
 * `leaf-refresh` suite: the cost of post-compromise recovery (keytree/leaf-key-refresh.ts) in
 * the LKH leaf key tree, at the keytree level (one core server's CPU; no network).
 *
 *   derive       one own key from a TLS exporter (HKDF-SHA256), on the server and on the leaf
 *   refresh-one  a batch refreshing ONE leaf's own key (the periodic or re-link refresh):
 *                server_ms (applyBatch), message_bytes (= rekey bytes per refreshed leaf),
 *                max_leaf_bytes (header + the largest part one leaf receives), leaf_us (the
 *                refreshed leaf applying its part under its pending key), n = 10^3 … 10^6
 *   refresh-512  a batch of 512 refreshes (one server's per-tick bound): server_ms, bytes per
 *                refreshed leaf
 *   full-refresh after a core server's revocation: every leaf's own key refreshed, in batches of
 *                `per_batch` slots in random order, at n = 10^4 and 10^6: total server CPU (every
 *                replica spends it), total rekey bytes, batches, mean bytes every leaf receives
 *                over the whole refresh (one part per batch), and the exposure window at that rate
 *                (batches × 100 ms, or the CPU if larger). per_batch = 1,536 is 3 servers × 512
 *                refreshes per 100 ms tick; at 10^6 a batch then costs more than a tick, refreshes
 *                pile up while it runs and the next cut takes as many as the machine allows
 *                (maxRekeysPerBatch, 4,096), so 4,096 models 10^6 (1,536 and 65,536 with --full).
 */
import { hkdfSync } from 'node:crypto';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import {
  LeafKeyTree,
  LeafKeys,
  derivedKeySource,
  encodeHeader,
  encodePart,
  refreshedLeafKey,
  type BatchResult,
  type TreeOp,
} from '../../keytree/index.js';
import { DEFAULT_MAX_REKEYS_PER_BATCH } from '../../leaf-plane/index.js';
import { measure, type BenchContext, type BenchResult, type BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';
import { leafUs, maxLeafBytes, median, randomMember, rng, round } from './keytree.js';

const GROUP = new TextEncoder().encode('bench-group');
/** Refreshes one server orders per batch tick (leaf-edge MAX_REFRESHES_PER_COMMAND). */
const PER_SERVER_TICK = 512;
const SERVERS = 3;
const TICK_MS = 100;

function buildTree(suite: CipherSuite, n: number): LeafKeyTree {
  return LeafKeyTree.create(
    { suite, keySource: derivedKeySource(suite, new Uint8Array(32).fill(7)), group: GROUP },
    n,
  );
}

function keyFor(suite: CipherSuite, slot: number, counter: number): Uint8Array {
  const exporter = suite.sha256(new Uint8Array(new Uint32Array([slot, counter]).buffer));
  return refreshedLeafKey(suite, exporter, { group: GROUP, admittedEpoch: 1, counter });
}

/** Mean bytes (header + own part) over `sample` random members of `res`. */
function meanLeafBytes(res: BatchResult, tree: LeafKeyTree, random: () => number, sample: number): number {
  const header = encodeHeader(res.message.header).length;
  let total = 0;
  for (let i = 0; i < sample; i++) {
    const slot = randomMember(tree, random, new Set());
    total += header + encodePart(res.split.part(res.split.partIdFor(slot)!)).length;
  }
  return total / sample;
}

function refreshBatches(ctx: BenchContext, suite: CipherSuite, n: number): BenchResult[] {
  const out: BenchResult[] = [];
  const t0 = performance.now();
  const tree = buildTree(suite, n);
  ctx.log(`  n=${n.toExponential(0)} built in ${(performance.now() - t0).toFixed(0)} ms`);
  const random = rng(n);
  let counter = 1;
  // One refresh per batch: the periodic / re-link refresh of one leaf.
  const repeats = ctx.quick ? 5 : 21;
  const ms: number[] = [];
  let last: BatchResult | undefined;
  let refreshed: LeafKeys | undefined;
  for (let r = 0; r < repeats + 3; r++) {
    const slot = randomMember(tree, random, new Set());
    const key = keyFor(suite, slot, counter++);
    const leaf = LeafKeys.fromWelcome(tree.welcome(slot)).withPendingOwnKey(key);
    const s = performance.now();
    last = tree.applyBatch([{ kind: 'rekey-leaf', slot, key }]);
    if (r >= 3) ms.push(performance.now() - s);
    refreshed = leaf;
  }
  out.push({
    case: 'refresh-one',
    params: { n },
    metrics: {
      server_ms: round(median(ms), 3),
      message_bytes: last!.encoded.length,
      max_leaf_bytes: maxLeafBytes(last!),
      leaf_us: round(leafUs(ctx, suite, refreshed!, last!), 1),
    },
  });
  // 512 refreshes in one batch.
  const batchMs: number[] = [];
  let bytes = 0;
  for (let r = 0; r < (ctx.quick ? 2 : 5); r++) {
    const taken = new Set<number>();
    const ops: TreeOp[] = [];
    for (let i = 0; i < Math.min(PER_SERVER_TICK, n); i++) {
      const slot = randomMember(tree, random, taken);
      ops.push({ kind: 'rekey-leaf', slot, key: keyFor(suite, slot, counter++) });
    }
    const s = performance.now();
    const res = tree.applyBatch(ops);
    batchMs.push(performance.now() - s);
    bytes = res.encoded.length / ops.length;
  }
  out.push({
    case: 'refresh-512',
    params: { n },
    metrics: { server_ms: round(median(batchMs), 2), bytes_per_refreshed_leaf: round(bytes) },
  });
  ctx.log(
    `  n=${n.toExponential(0)} refresh-one ${out[0]!.metrics.server_ms} ms, ${out[0]!.metrics.message_bytes} B; refresh-512 ${out[1]!.metrics.server_ms} ms, ${out[1]!.metrics.bytes_per_refreshed_leaf} B/leaf`,
  );
  return out;
}

function fullRefresh(ctx: BenchContext, suite: CipherSuite, n: number, perBatch: number): BenchResult {
  const tree = buildTree(suite, n);
  const random = rng(n + 1);
  // Leaves are linked to servers in no slot order: refresh them in a random permutation.
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let cpuMs = 0;
  let bytes = 0;
  let leafBytes = 0;
  let batches = 0;
  for (let at = 0; at < n; at += perBatch) {
    const ops: TreeOp[] = order
      .slice(at, at + perBatch)
      .map((slot) => ({ kind: 'rekey-leaf', slot, key: keyFor(suite, slot, 1) }));
    const s = performance.now();
    const res = tree.applyBatch(ops);
    cpuMs += performance.now() - s;
    bytes += res.encoded.length;
    leafBytes += meanLeafBytes(res, tree, random, 64);
    batches++;
  }
  const windowS = Math.max(batches * TICK_MS, cpuMs) / 1000;
  ctx.log(
    `  full refresh n=${n.toExponential(0)}: ${batches} batches of ${perBatch}, CPU ${(cpuMs / 1000).toFixed(2)} s, ${(bytes / 1e6).toFixed(1)} MB rekey, ${(leafBytes / 1024).toFixed(1)} KiB per leaf, window ${windowS.toFixed(1)} s`,
  );
  return {
    case: 'full-refresh',
    params: { n, per_batch: perBatch, tick_ms: TICK_MS },
    metrics: {
      batches,
      server_cpu_s: round(cpuMs / 1000, 2),
      cpu_us_per_leaf: round((cpuMs * 1000) / n, 1),
      rekey_bytes: bytes,
      rekey_bytes_per_leaf: round(bytes / n),
      bytes_received_per_leaf: round(leafBytes),
      window_s: round(windowS, 1),
    },
  };
}

const suite: BenchSuite = {
  name: 'leaf-refresh',
  description: 'post-compromise recovery: own-key refresh cost and the full refresh after a core revocation',
  async run(ctx) {
    const cs = await loadSuite('fast');
    const results: BenchResult[] = [];
    const exporter = cs.sha256(new Uint8Array([1]));
    const derive = measure(
      () => refreshedLeafKey(cs, exporter, { group: GROUP, admittedEpoch: 1, counter: 1 }),
      ctx.timing,
    );
    results.push({ case: 'derive', params: {}, metrics: { us: round(derive.nsPerOp / 1000, 2) } });
    // Anchor, in the same run: one raw HKDF-SHA256 from node:crypto (the derivation's own cost).
    const salt = new Uint8Array(32);
    const raw = measure(() => hkdfSync('sha256', exporter, salt, GROUP, 32), ctx.timing);
    results.push({ case: 'anchor.hkdf', params: {}, metrics: { us: round(raw.nsPerOp / 1000, 2) } });
    ctx.log(
      `  anchor: raw HKDF-SHA256 ${(raw.nsPerOp / 1000).toFixed(1)} µs; derive ${(derive.nsPerOp / 1000).toFixed(1)} µs`,
    );
    for (const n of ctx.quick ? [1e3, 1e4] : [1e3, 1e4, 1e5, 1e6])
      results.push(...refreshBatches(ctx, cs, n));
    const tick = SERVERS * PER_SERVER_TICK;
    results.push(fullRefresh(ctx, cs, 1e4, tick));
    if (!ctx.quick) results.push(fullRefresh(ctx, cs, 1e6, DEFAULT_MAX_REKEYS_PER_BATCH));
    if (ctx.full) for (const per of [tick, 65_536]) results.push(fullRefresh(ctx, cs, 1e6, per));
    return results;
  },
  charts(results) {
    const points = (c: string, metric: string) =>
      results.filter((r) => r.case === c).map((r) => ({ x: r.params.n as number, y: r.metrics[metric]! }));
    const charts: Chart[] = [
      {
        kind: 'line',
        title: 'Server compute per refresh batch',
        xLabel: 'leaves',
        yLabel: 'ms',
        logX: true,
        logY: true,
        series: [
          { name: 'one refresh', points: points('refresh-one', 'server_ms') },
          { name: '512 refreshes', points: points('refresh-512', 'server_ms') },
        ],
      },
      {
        kind: 'bar',
        title: 'Full refresh after a core revocation: server CPU',
        unit: 's',
        groups: results
          .filter((r) => r.case === 'full-refresh')
          .map((r) => ({
            label: `n = ${r.params.n}, ${r.params.per_batch}/batch`,
            bars: [{ series: 'server CPU', value: r.metrics.server_cpu_s! }],
          })),
      },
    ];
    return charts;
  },
};

export default suite;
