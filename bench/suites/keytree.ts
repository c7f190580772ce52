/**
 * `keytree` suite: the LKH leaf key tree at n = 10^3 … 10^6 leaves — one leave, one join, and
 * batches with 1 % and 10 % churn (half joins, half leaves) — side by side with ts-mls
 * (MLS/TreeKEM, RFC 9420) removing one member at n = 10^2, 10^3 (10^4 with --full).
 *
 * Metrics per case: server_ms (applyBatch: new keys, wraps, encoding, part digests and Merkle
 * root), message_bytes (the full rekey message), max_leaf_bytes (header + the largest part any
 * leaf needs), leaf_us (a leaf decoding, verifying and applying its part; `worst` is the
 * deepest part, `typical` a random member's). Per n: build_ms and heap_bytes_per_leaf (heap +
 * array buffers after GC, divided by n). MLS: create_ms (commit with one Remove), process_ms
 * (another member processing it), message_bytes. Server ms are medians over repeated batches
 * after warm-up batches where a batch is cheap, a single run otherwise (stated in `runs`).
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import {
  LeafKeyTree,
  LeafKeys,
  decodePart,
  derivedKeySource,
  encodeHeader,
  encodePart,
  type BatchResult,
  type TreeOp,
} from '../../keytree/index.js';
import { measure, type BenchContext, type BenchResult, type BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';

const GROUP = new TextEncoder().encode('bench-group');

function collectGarbage(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) return g();
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function usedBytes(): number {
  collectGarbage();
  collectGarbage();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Deterministic PRNG so every run picks the same slots. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function randomMember(tree: LeafKeyTree, random: () => number, taken: Set<number>): number {
  const capacity = tree.arity ** tree.height;
  for (;;) {
    const slot = Math.floor(random() * capacity);
    if (tree.isOccupied(slot) && !taken.has(slot)) {
      taken.add(slot);
      return slot;
    }
  }
}

interface Observed {
  serverMs: number[];
  messageBytes: number;
  maxLeafBytes: number;
  leafUsWorst: number;
  leafUsTypical: number;
}

/** Header + largest encoded part: what the most demanding leaf must receive. */
export function maxLeafBytes(res: BatchResult): number {
  let max = 0;
  for (let id = 0; id < res.split.count; id++) max = Math.max(max, encodePart(res.split.part(id)).length);
  return encodeHeader(res.message.header).length + max;
}

/** Microseconds for `leaf` to decode, verify and apply its part of `res`. */
export function leafUs(ctx: BenchContext, suite: CipherSuite, leaf: LeafKeys, res: BatchResult): number {
  const id = res.split.partIdFor(leaf.slot);
  if (id === undefined) throw new Error(`no part for slot ${leaf.slot}`);
  const bytes = encodePart(res.split.part(id));
  const header = res.message.header;
  const check = leaf.processPart(suite, header, decodePart(bytes));
  if (check.epoch !== res.epoch) throw new Error('leaf did not advance');
  const t = measure(() => leaf.processPart(suite, header, decodePart(bytes)), {
    ...ctx.timing,
    runMs: Math.min(ctx.timing.runMs, 100),
  });
  return t.nsPerOp / 1000;
}

/**
 * Runs `repeats` batches built by `makeOps`, timing applyBatch. Before each batch it takes the
 * welcome of a member sharing a parent with a departing slot (its part is the deepest: the
 * worst case) and of a random member (typical), to time their processing afterwards.
 */
function observe(
  ctx: BenchContext,
  suite: CipherSuite,
  tree: LeafKeyTree,
  warmup: number,
  repeats: number,
  makeOps: (random: () => number, taken: Set<number>) => TreeOp[],
  seed: number,
): Observed {
  const random = rng(seed);
  const out: Observed = { serverMs: [], messageBytes: 0, maxLeafBytes: 0, leafUsWorst: 0, leafUsTypical: 0 };
  for (let w = 0; w < warmup; w++) tree.applyBatch(makeOps(random, new Set()));
  for (let r = 0; r < repeats; r++) {
    const taken = new Set<number>();
    const ops = makeOps(random, taken);
    const departing = ops.find((op) => op.kind === 'leave');
    let worstSlot = departing === undefined ? randomMember(tree, random, taken) : departing.slot ^ 1;
    if (!tree.isOccupied(worstSlot) || taken.has(worstSlot)) worstSlot = randomMember(tree, random, taken);
    const worst = LeafKeys.fromWelcome(tree.welcome(worstSlot));
    const typical = LeafKeys.fromWelcome(tree.welcome(randomMember(tree, random, taken)));
    const t0 = performance.now();
    const res = tree.applyBatch(ops);
    out.serverMs.push(performance.now() - t0);
    if (r === repeats - 1) {
      out.messageBytes = res.encoded.length;
      out.maxLeafBytes = maxLeafBytes(res);
      out.leafUsWorst = leafUs(ctx, suite, worst, res);
      out.leafUsTypical = leafUs(ctx, suite, typical, res);
    }
  }
  return out;
}

function churn(tree: LeafKeyTree, changes: number) {
  return (random: () => number, taken: Set<number>): TreeOp[] => {
    const ops: TreeOp[] = [];
    for (let i = 0; i < changes; i++) {
      if (i % 2 === 0) ops.push({ kind: 'leave', slot: randomMember(tree, random, taken) });
      else ops.push({ kind: 'join' });
    }
    return ops;
  };
}

async function runKeytree(
  ctx: BenchContext,
  suite: CipherSuite,
  sizes: readonly number[],
): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const n of sizes) {
    const before = usedBytes();
    const t0 = performance.now();
    const tree = LeafKeyTree.create(
      { suite, keySource: derivedKeySource(suite, new Uint8Array(32).fill(7)), group: GROUP },
      n,
    );
    const buildMs = performance.now() - t0;
    const heapPerLeaf = (usedBytes() - before) / n;
    results.push({
      case: 'build',
      params: { n },
      metrics: { build_ms: round(buildMs), heap_bytes_per_leaf: round(heapPerLeaf) },
    });
    ctx.log(
      `  n=${n.toExponential(0)} build ${buildMs.toFixed(0)} ms, ${heapPerLeaf.toFixed(0)} B/leaf, height ${tree.height}`,
    );

    const single = ctx.quick ? 5 : 21;
    const cases: {
      name: string;
      churnPct?: number;
      warmup: number;
      repeats: number;
      ops: (random: () => number, taken: Set<number>) => TreeOp[];
    }[] = [
      {
        name: 'leave',
        warmup: single,
        repeats: single,
        ops: (random, taken) => [{ kind: 'leave', slot: randomMember(tree, random, taken) }],
      },
      { name: 'join', warmup: single, repeats: single, ops: () => [{ kind: 'join' }] },
    ];
    for (const pct of [1, 10]) {
      const changes = Math.max(2, Math.round((n * pct) / 100));
      const repeats = changes <= 1000 ? (ctx.quick ? 3 : 7) : changes <= 10_000 ? 3 : 1;
      cases.push({
        name: 'batch',
        churnPct: pct,
        warmup: changes <= 1000 ? 2 : 0,
        repeats,
        ops: churn(tree, changes),
      });
    }
    for (const c of cases) {
      const o = observe(ctx, suite, tree, c.warmup, c.repeats, c.ops, n + c.name.length + (c.churnPct ?? 0));
      const params: Record<string, number | string> = { n };
      if (c.churnPct !== undefined) {
        params.churn_pct = c.churnPct;
        params.changes = Math.max(2, Math.round((n * c.churnPct) / 100));
      }
      const metrics = {
        server_ms: round(median(o.serverMs), 3),
        message_bytes: o.messageBytes,
        max_leaf_bytes: o.maxLeafBytes,
        leaf_us: round(o.leafUsWorst, 1),
        leaf_us_typical: round(o.leafUsTypical, 1),
        runs: o.serverMs.length,
      };
      results.push({ case: c.name, params, metrics });
      ctx.log(
        `  n=${n.toExponential(0)} ${(c.name + (c.churnPct ? ` ${c.churnPct}%` : '')).padEnd(10)} server ${metrics.server_ms} ms  msg ${metrics.message_bytes} B  leaf ≤ ${metrics.max_leaf_bytes} B  leaf ${metrics.leaf_us} µs (typ ${metrics.leaf_us_typical})`,
      );
    }
  }
  return results;
}

// ── ts-mls anchor ─────────────────────────────────────────────────────────────────────────────

async function runMls(ctx: BenchContext, sizes: readonly number[]): Promise<BenchResult[]> {
  const mls = await import('ts-mls');
  const impl = await mls.getCiphersuiteImpl(
    mls.getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'),
  );
  const results: BenchResult[] = [];
  const enc = new TextEncoder();
  for (const n of sizes) {
    const packages = [];
    for (let i = 0; i < n; i++) {
      packages.push(
        await mls.generateKeyPackage(
          { credentialType: 'basic', identity: enc.encode(`m${i}`) },
          mls.defaultCapabilities(),
          mls.defaultLifetime,
          [],
          impl,
        ),
      );
    }
    const [creator, receiver, ...rest] = packages;
    let group = await mls.createGroup(
      enc.encode('bench'),
      creator!.publicPackage,
      creator!.privatePackage,
      [],
      impl,
    );
    const adds = [receiver!, ...rest].map((p) => ({
      proposalType: 'add' as const,
      add: { keyPackage: p.publicPackage },
    }));
    const added = await mls.createCommit({ state: group, cipherSuite: impl }, { extraProposals: adds });
    group = added.newState;
    let other = await mls.joinGroup(
      added.welcome!,
      receiver!.publicPackage,
      receiver!.privatePackage,
      mls.emptyPskIndex,
      impl,
      group.ratchetTree,
    );

    const t0 = performance.now();
    const removal = await mls.createCommit(
      { state: group, cipherSuite: impl },
      { extraProposals: [{ proposalType: 'remove', remove: { removed: n - 1 } }] },
    );
    const createMs = performance.now() - t0;
    const bytes = mls.encodeMlsMessage(removal.commit);
    const decoded = mls.decodeMlsMessage(bytes, 0)![0];
    if (decoded.wireformat !== 'mls_private_message' && decoded.wireformat !== 'mls_public_message')
      throw new Error('unexpected MLS wire format');
    const t1 = performance.now();
    const processed = await mls.processMessage(decoded, other, mls.emptyPskIndex, mls.acceptAll, impl);
    const processMs = performance.now() - t1;
    if (processed.kind !== 'newState') throw new Error('MLS commit did not produce a new state');
    other = processed.newState;
    results.push({
      case: 'mls-remove',
      params: { n },
      metrics: {
        create_ms: round(createMs, 1),
        process_ms: round(processMs, 1),
        message_bytes: bytes.length,
      },
    });
    ctx.log(
      `  n=${n.toExponential(0)} mls-remove create ${createMs.toFixed(0)} ms  process ${processMs.toFixed(0)} ms  ${bytes.length} B`,
    );
  }
  return results;
}

export function round(x: number, digits = 0): number {
  return Number(x.toFixed(digits));
}

/** Logs each target from the issue with the measured figure (pass or miss; never hides a miss). */
function reportTargets(ctx: BenchContext, results: readonly BenchResult[]): void {
  const find = (c: string, n: number, pct?: number) =>
    results.find(
      (r) => r.case === c && r.params.n === n && (pct === undefined || r.params.churn_pct === pct),
    );
  const line = (what: string, value: number | undefined, limit: number, unit: string, atLeast = false) => {
    if (value === undefined) return;
    const ok = atLeast ? value >= limit : value <= limit;
    ctx.log(`  target ${ok ? 'met ' : 'MISS'}  ${what}: ${value} ${unit} (${atLeast ? '≥' : '≤'} ${limit})`);
  };
  const leave6 = find('leave', 1e6);
  line('leave at 10^6, server', leave6?.metrics.server_ms, 1, 'ms');
  line('leave at 10^6, message', leave6?.metrics.message_bytes, 2048, 'B');
  const batch6 = find('batch', 1e6, 1);
  line('10^4 changes at 10^6, server', batch6?.metrics.server_ms, 1500, 'ms');
  line('10^4 changes at 10^6, max leaf bytes', batch6?.metrics.max_leaf_bytes, 2048, 'B');
  const leafMax = Math.max(
    ...results.filter((r) => r.metrics.leaf_us !== undefined).map((r) => r.metrics.leaf_us!),
  );
  line('leaf_us, worst case over all cases', leafMax, 100, 'µs');
  const leave3 = find('leave', 1e3);
  const mls3 = find('mls-remove', 1e3);
  if (leave3 !== undefined && mls3 !== undefined) {
    const ours = leave3.metrics.server_ms! + leave3.metrics.leaf_us! / 1000;
    const theirs = mls3.metrics.create_ms! + mls3.metrics.process_ms!;
    line('remove-to-new-key speedup over ts-mls at 10^3', round(theirs / ours), 1e4, '×', true);
  }
}

const suite: BenchSuite = {
  name: 'keytree',
  description: 'LKH leaf key tree: leave/join/batch rekey at 10^3..10^6 leaves vs ts-mls remove',
  async run(ctx) {
    const cs = await loadSuite('fast');
    const sizes = ctx.quick ? [1e3, 1e4, 1e5] : [1e3, 1e4, 1e5, 1e6];
    const results = await runKeytree(ctx, cs, sizes);
    results.push(...(await runMls(ctx, ctx.full ? [1e2, 1e3, 1e4] : ctx.quick ? [1e2] : [1e2, 1e3])));
    reportTargets(ctx, results);
    return results;
  },
  charts(results) {
    const series = (c: string, metric: string, pct?: number) => ({
      name: pct === undefined ? c : `${c} ${pct}%`,
      points: results
        .filter(
          (r) =>
            r.case === c &&
            (pct === undefined || r.params.churn_pct === pct) &&
            r.metrics[metric] !== undefined,
        )
        .map((r) => ({ x: r.params.n as number, y: r.metrics[metric]! })),
    });
    const lkh = (metric: string) => [
      series('leave', metric),
      series('join', metric),
      series('batch', metric, 1),
      series('batch', metric, 10),
    ];
    const charts: Chart[] = [
      {
        kind: 'line',
        title: 'LKH server compute per batch',
        xLabel: 'leaves',
        yLabel: 'ms',
        logX: true,
        logY: true,
        series: lkh('server_ms'),
      },
      {
        kind: 'line',
        title: 'Largest payload one leaf needs (header + part)',
        xLabel: 'leaves',
        yLabel: 'bytes',
        logX: true,
        series: lkh('max_leaf_bytes'),
      },
      {
        kind: 'line',
        title: 'Full rekey message',
        xLabel: 'leaves',
        yLabel: 'bytes',
        logX: true,
        logY: true,
        series: lkh('message_bytes'),
      },
      {
        kind: 'line',
        title: 'Leaf processing, deepest part',
        xLabel: 'leaves',
        yLabel: 'µs',
        logX: true,
        series: lkh('leaf_us'),
      },
      {
        kind: 'line',
        title: 'Memory',
        xLabel: 'leaves',
        yLabel: 'bytes per leaf',
        logX: true,
        series: [series('build', 'heap_bytes_per_leaf')],
      },
    ];
    const groups = results
      .filter((r) => r.case === 'mls-remove')
      .map((m) => {
        const leave = results.find((r) => r.case === 'leave' && r.params.n === m.params.n);
        const bars = [
          { series: 'ts-mls remove (create + process)', value: m.metrics.create_ms! + m.metrics.process_ms! },
        ];
        if (leave !== undefined)
          bars.push({
            series: 'LKH leave (server + leaf)',
            value: leave.metrics.server_ms! + leave.metrics.leaf_us! / 1000,
          });
        return { label: `n = ${m.params.n}`, bars };
      });
    if (groups.length > 0)
      charts.push({ kind: 'bar', title: 'Remove one member → new group key', unit: 'ms', log: true, groups });
    return charts;
  },
};

export default suite;
