/**
 * `catch-up` suite: what a leaf's catch-up request costs a core server's main thread, and what a
 * flood of them costs under the per-leaf request budget (issue 17, finding 4).
 *
 * One `LeafEdge` (the shipped server side of the leaf protocol, default budgets) over a stand-in
 * transport that only counts bytes, on a virtual clock that stands still within a case, on a replicated `LeafStateMachine` of n leaves with a 64-epoch history (one
 * leave and one join per batch, so every epoch rekeys a path). Cases:
 *   - catchUp.served: a welcomed leaf asks for the whole history of its own path — `cold` (the
 *     first leaf of its subtree to ask: parts built) and `cached` (parts built already);
 *     µs per request and reply bytes;
 *   - flood: one admitted leaf sends `frames` catch-up requests back to back:
 *     its burst is served, a burst of refusals follows and its link is closed; the rest is
 *     dropped unread. µs per frame over the flood, and how many were served;
 *   - flood.honest: during that flood, other leaves' catch-ups (one per 1,000 attacker frames)
 *     are all served, each from its own budget.
 * The real-process figure (the server's main-thread CPU under a flood over TLS, with re-links)
 * comes from test/adversary/catch-up-flood.test.ts.
 */
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { LeafStateMachine, type LeafCommand } from '../../leaf-plane/index.js';
import { LeafEdge, ServerMetrics, jsonLogger } from '../../server/index.js';
import { encodeLeafFrame } from '../../gossip-edge/index.js';
import type { TlsTransport } from '../../net/index.js';
import { measure, type BenchContext, type BenchResult, type BenchSuite } from '../harness.js';

const EPOCHS = 64;

interface World {
  readonly edge: LeafEdge;
  readonly machine: LeafStateMachine;
  /** Bytes and frames the edge sent, per peer. */
  readonly sent: Map<string, { frames: number; bytes: number }>;
  /** Welcomed peers, by certificate name. */
  readonly peers: string[];
}

function fingerprint(suite: CipherSuite, name: string): Uint8Array {
  return suite.sha256(new TextEncoder().encode(name));
}

/** n leaves, `welcomed` of them linked to this edge, and a full history of EPOCHS epochs. */
function build(suite: CipherSuite, n: number, welcomed: number, clock: { ms: number }): World {
  const sent = new Map<string, { frames: number; bytes: number }>();
  const transport = {
    send(peer: string, bytes: Uint8Array): boolean {
      const s = sent.get(peer) ?? { frames: 0, bytes: 0 };
      s.frames++;
      s.bytes += bytes.length;
      sent.set(peer, s);
      return true;
    },
    disconnect(): void {},
    remoteAddress: (): string => '127.0.0.1',
  } as unknown as TlsTransport;
  const machine = new LeafStateMachine({
    suite,
    group: new TextEncoder().encode('bench'),
    secret: suite.randomBytes(32),
    leaseMs: 3_600_000,
  });
  machine.setPrimary(true);
  const seed = suite.randomBytes(32);
  const order = (cmd: LeafCommand): boolean => (machine.apply(cmd), true);
  const edge = new LeafEdge({
    transport,
    machine,
    suite,
    signingSeed: seed,
    signingPublic: suite.ed25519PublicKey(seed),
    leaseMs: 3_600_000,
    signers: () => [],
    crls: () => ({ ders: [], lowest: undefined }),
    leafKeyRefreshMs: 86_400_000,
    exporter: () => undefined, // no own-key refreshes: the bench measures catch-up alone
    order,
    publish: () => true,
    metrics: new ServerMetrics(),
    log: jsonLogger('error', {}, () => {}),
    now: () => clock.ms, // virtual: no budget refills within a case; the suite advances it between cases
    setTimer: (timer, delayMs) => void setTimeout(() => edge.onTimer(timer), delayMs),
  });
  edge.settle(); // one replica applying at once: everything it holds is committed
  let epoch = machine.epoch;
  const cut = (): void => {
    const { batch } = machine.apply({ kind: 'cutBatch', value: { epoch: epoch + 1, now: 1 } });
    if (batch === undefined) return; // nothing pending
    epoch++;
    edge.distribute(batch);
  };
  const admit = (name: string): void =>
    void order({
      kind: 'admit',
      value: { name, serial: name, fingerprint: fingerprint(suite, name), now: 1 },
    });
  const peers: string[] = [];
  for (let i = 0; i < welcomed; i++) {
    const name = `w${i}`;
    const peer = `bench/leaf/${name}`;
    edge.rememberCert(peer, { name, serial: name, fingerprint: fingerprint(suite, name) });
    edge.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
    peers.push(peer);
  }
  for (let i = welcomed; i < n; i++) {
    admit(`f${i}`);
    if ((i + 1) % 1024 === 0) cut();
  }
  cut();
  for (let e = 0; e < EPOCHS; e++) {
    order({ kind: 'leave', value: { name: `f${welcomed + e}` } });
    admit(`g${e}`);
    cut();
  }
  return { edge, machine, sent, peers };
}

/** Sends one catch-up of the whole history for `peer`'s own path; returns [µs, reply bytes]. */
function catchUp(w: World, peer: string, name: string): [number, number] {
  const slot = w.edge.history.oldest === undefined ? 0 : slotBefore(w, name);
  const frame = encodeLeafFrame('catchUpRequest', { fromEpoch: w.edge.history.oldest!, slot });
  const before = w.sent.get(peer)?.bytes ?? 0;
  const t0 = process.hrtime.bigint();
  w.edge.onMessage(peer, frame);
  const us = Number(process.hrtime.bigint() - t0) / 1000;
  return [us, (w.sent.get(peer)?.bytes ?? 0) - before];
}

/** The slot `name` held before the oldest epoch of the history (no compaction moves here). */
function slotBefore(w: World, name: string): number {
  return w.machine.entry(name)!.slot;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const suite = await loadSuite();
  const sizes = ctx.quick ? [1024] : ctx.full ? [4096, 65_536] : [4096];
  const out: BenchResult[] = [];
  for (const n of sizes) {
    const welcomed = ctx.quick ? 64 : 256;
    const clock = { ms: 0 };
    const w = build(suite, n, welcomed, clock);
    const names = w.peers.map((p) => p.slice(p.lastIndexOf('/') + 1));
    const cold: number[] = [];
    const cached: number[] = [];
    let bytes = 0;
    for (let i = 0; i < w.peers.length; i++) {
      const [us, b] = catchUp(w, w.peers[i]!, names[i]!);
      cold.push(us);
      bytes = Math.max(bytes, b);
    }
    for (let i = 0; i < w.peers.length; i++) cached.push(catchUp(w, w.peers[i]!, names[i]!)[0]);
    const params = { leaves: n, epochs: w.edge.history.newest! - w.edge.history.oldest! + 1 };
    out.push({
      case: 'catchUp.served',
      params: { ...params, parts: 'cold' },
      metrics: { us: median(cold), replyBytes: bytes },
    });
    out.push({
      case: 'catchUp.served',
      params: { ...params, parts: 'cached' },
      metrics: { us: median(cached), replyBytes: bytes },
    });
    ctx.log(
      `n=${n}: catch-up of ${params.epochs} epochs: cold ${median(cold).toFixed(1)} µs, cached ${median(cached).toFixed(1)} µs, ${bytes} B`,
    );

    // The flood: one welcomed leaf (its budget untouched so far: two requests above) sends
    // `frames` requests back to back; the other leaves' catch-ups go on meanwhile.
    const frames = ctx.quick ? 20_000 : 200_000;
    clock.ms += 1000; // a second later: every budget (per leaf, server-wide) full again
    const attacker = w.peers[0]!;
    const request = encodeLeafFrame('catchUpRequest', {
      fromEpoch: w.edge.history.oldest!,
      slot: slotBefore(w, names[0]!),
    });
    const sentBefore = w.sent.get(attacker)?.frames ?? 0;
    let honestServed = 0;
    let honestAsked = 0;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < frames; k++) {
      w.edge.onMessage(attacker, request);
      if (k % 1000 === 999) {
        const i = 1 + (honestAsked % (w.peers.length - 1));
        honestAsked++;
        if (catchUp(w, w.peers[i]!, names[i]!)[1] > 200) honestServed++;
      }
    }
    const floodUs = Number(process.hrtime.bigint() - t0) / 1000;
    const answered = (w.sent.get(attacker)?.frames ?? 0) - sentBefore;
    out.push({
      case: 'flood',
      params: { ...params, frames },
      metrics: { usPerFrame: floodUs / frames, answered, totalMs: floodUs / 1000 },
    });
    out.push({
      case: 'flood.honest',
      params: { ...params, frames },
      metrics: { asked: honestAsked, served: honestServed },
    });
    ctx.log(
      `n=${n}: flood of ${frames} frames: ${(floodUs / frames).toFixed(2)} µs/frame (${(floodUs / 1000).toFixed(0)} ms), ` +
        `${answered} answered (served + refusals); honest catch-ups meanwhile: ${honestServed}/${honestAsked} served`,
    );
  }
  // Anchor, in the same run: one raw Ed25519 signature, the unit of a server's own work per epoch
  // (a catch-up serves already signed parts, so it should cost a fraction of one).
  const cs = await loadSuite();
  const seed = new Uint8Array(32).fill(9);
  const header = new Uint8Array(200).fill(1);
  const sign = measure(() => cs.ed25519Sign(seed, header), ctx.timing);
  out.push({
    case: 'anchor.ed25519-sign',
    params: { bytes: header.length },
    metrics: { us: sign.nsPerOp / 1000 },
  });
  ctx.log(`anchor: raw Ed25519 sign of ${header.length} B: ${(sign.nsPerOp / 1000).toFixed(1)} µs`);
  return out;
}

const suite: BenchSuite = {
  name: 'catch-up',
  description: "a leaf's catch-up request: its cost to the server, and a flood under the per-leaf budget",
  run,
};
export default suite;
