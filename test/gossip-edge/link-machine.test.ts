/**
 * GossipLinkMachine (sans-IO) on a virtual clock: no socket, no timer. A tiny network runs the
 * machines' effects — datagrams delivered by address, the round timer at virtual times, early
 * envelopes replayed after the call — so the address rules, the round clock and the bounds are
 * checked as the shipped machine decides them.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import {
  CLAIM_PERIODS,
  DEFAULT_GOSSIP_ROUND_MS,
  GossipLinkMachine,
  MacAuthenticator,
  encodeAddrProbe,
  openAddrProbe,
  PROBE_FRAME_TYPE,
  PROBE_NONCE_BYTES,
  type GossipBody,
  type GossipLinkEffect,
  type Item,
} from '../../gossip-edge/index.js';
import { peekFrameHeader } from '../../wire/index.js';

const EPOCH = 1;
/** The group key of epoch `e` (every host and insider of a test derives the same). */
const keyOf = (e: number): Uint8Array => new Uint8Array(32).fill(6 + e);

/** The peers' addresses: A (the victim), B (a live peer), M (an insider), B2 (B after a NAT rebind). */
const AT = { a: '10.0.0.1:4000', b: '10.0.0.2:4000', m: '10.0.0.66:4000', b2: '10.0.0.2:5000' };
const ID = { a: 1, b: 2, m: 3 };

interface Host {
  readonly machine: GossipLinkMachine;
  nextTick: number | undefined;
  delivered: Item[];
}

/** A virtual network: datagrams go to the machine at their address (or to `raw` taps); time moves in ms. */
class VirtualNet {
  now = 0;
  readonly hosts = new Map<string, Host>();
  /** Addresses whose datagrams (in and out) are dropped: a silent host. */
  readonly silent = new Set<string>();
  /** Datagrams to addresses no machine owns (an attacker's socket), by address. */
  readonly raw = new Map<string, { from: string; bytes: Uint8Array }[]>();
  private readonly queue: { from: string; to: string; bytes: Uint8Array }[] = [];
  private readonly replays: string[] = [];

  constructor(private readonly suite: CipherSuite) {}

  /** A started, seeded host holding the keys of `epochs` (in order: it ends in the last). */
  add(
    at: string,
    slot: number,
    seedPeers: readonly { id: number; at: string }[],
    epochs: readonly number[] = [EPOCH],
  ): Host {
    const delivered: Item[] = [];
    let n = 0;
    const machine = new GossipLinkMachine(
      this.suite,
      {
        admit: () => true,
        deliver: (item) => void delivered.push(item),
        pullFromCore: () => undefined,
        reseed: () => undefined,
      },
      // Deterministic peer choices and nonces: a replayable run.
      {
        rng: { int: (k: number) => (n++ * 7919) % k },
        nonce: () => new Uint8Array(PROBE_NONCE_BYTES).fill(++n),
      },
    );
    const host: Host = { machine, nextTick: undefined, delivered };
    this.hosts.set(at, host);
    this.run(at, machine.start(slot, epochs[0]!, 4));
    for (const e of epochs) this.run(at, machine.installKey(e, keyOf(e)));
    const peers = seedPeers.map((p) => {
      const [h, port] = p.at.split(':');
      return { id: p.id, host: h!, port: Number(port) };
    });
    this.run(at, machine.seed({ active: peers, passive: [], contacts: [], stream: { origin: 1, next: 0 } }));
    return host;
  }

  run(at: string, effects: readonly GossipLinkEffect[]): void {
    const host = this.hosts.get(at)!;
    for (const e of effects) {
      if (e.type === 'datagram') this.queue.push({ from: at, to: e.to, bytes: e.bytes });
      else if (e.type === 'setTimer') host.nextTick = this.now + e.afterMs;
      else this.replays.push(at);
    }
  }

  /** Sends a datagram as if from `from` (an attacker's socket). */
  inject(from: string, to: string, bytes: Uint8Array): void {
    this.queue.push({ from, to, bytes });
    this.drain();
  }

  private drain(): void {
    for (let guard = 0; this.queue.length > 0 || this.replays.length > 0; guard++) {
      if (guard > 100_000) throw new Error('datagram storm');
      const replay = this.replays.shift();
      if (replay !== undefined) {
        this.run(replay, this.hosts.get(replay)!.machine.replayEarly());
        continue;
      }
      const d = this.queue.shift()!;
      if (this.silent.has(d.from) || this.silent.has(d.to)) continue;
      const host = this.hosts.get(d.to);
      if (host === undefined) {
        const tap = this.raw.get(d.to) ?? [];
        tap.push({ from: d.from, bytes: d.bytes });
        this.raw.set(d.to, tap);
      } else this.run(d.to, host.machine.handleDatagram(d.from, d.bytes));
    }
  }

  /** Advances virtual time by `ms`, firing round timers as they fall due. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      this.drain();
      let next: [string, Host] | undefined;
      for (const entry of this.hosts)
        if (entry[1].nextTick !== undefined && (next === undefined || entry[1].nextTick < next[1].nextTick!))
          next = entry;
      if (next === undefined || next[1].nextTick! > end) break;
      this.now = next[1].nextTick!;
      next[1].nextTick = undefined;
      if (!this.silent.has(next[0])) this.run(next[0], next[1].machine.tick());
    }
    this.now = end;
    this.drain();
  }
}

/** An insider holding the group keys up to `epoch`: it MACs whatever it likes, under any sender id. */
function insider(
  suite: CipherSuite,
  epoch = EPOCH,
): { auth: MacAuthenticator; claim(sender: number): Uint8Array } {
  const auth = new MacAuthenticator(suite);
  for (let e = 1; e <= epoch; e++) auth.install(e, keyOf(e));
  const body: GossipBody = { kind: 'digest', reply: false, probe: true, epoch, ids: [] };
  return { auth, claim: (sender) => auth.seal({ epoch, sender, body })! };
}

/** Answers, as `as`, every challenge that reached the insider's address `at`. */
function answerAll(net: VirtualNet, m: { auth: MacAuthenticator }, at: string, as: number): void {
  for (const d of net.raw.get(at)?.splice(0) ?? []) {
    if (peekFrameHeader(d.bytes, 1 << 16).type !== PROBE_FRAME_TYPE) continue;
    const p = openAddrProbe(m.auth, d.bytes);
    if (p === undefined || p.answer) continue;
    net.inject(
      at,
      d.from,
      encodeAddrProbe(m.auth, { answer: true, epoch: p.epoch, sender: as, nonce: p.nonce })!,
    );
  }
}

test('the round timer: asked at the first seed, re-armed by every tick; idle periods skip rounds', async (t) => {
  const suite = await loadSuite();
  const net = new VirtualNet(suite);
  const a = net.add(AT.a, ID.a, []);
  t.is(a.nextTick, DEFAULT_GOSSIP_ROUND_MS, 'the seed asks for the round timer');
  net.advance(10 * DEFAULT_GOSSIP_ROUND_MS);
  t.is(a.nextTick, 11 * DEFAULT_GOSSIP_ROUND_MS, 'each tick asks for the next');
  // Alone and idle: one round every DEFAULT_IDLE_ROUND_EVERY (5) periods.
  t.is(a.machine.stats.rounds, 2);
  a.machine.close();
  t.deepEqual(a.machine.tick(), [], 'a closed machine asks for nothing');
});

test('an insider claims a live peer from its own address: the held address answers and keeps the traffic', async (t) => {
  const suite = await loadSuite();
  const net = new VirtualNet(suite);
  const a = net.add(AT.a, ID.a, [{ id: ID.b, at: AT.b }]);
  net.add(AT.b, ID.b, [{ id: ID.a, at: AT.a }]);
  net.advance(5 * DEFAULT_GOSSIP_ROUND_MS);
  t.is(a.machine.book.peek(ID.b), AT.b);
  const m = insider(suite);
  // A full insider also answers every challenge sent to its address as the peer it claims to be.
  let hijacked = 0;
  for (let k = 0; k < 4 * CLAIM_PERIODS; k++) {
    net.inject(AT.m, AT.a, m.claim(ID.b));
    answerAll(net, m, AT.m, ID.b);
    net.advance(DEFAULT_GOSSIP_ROUND_MS);
    answerAll(net, m, AT.m, ID.b);
    if (a.machine.book.peek(ID.b) === AT.m) hijacked++;
  }
  t.is(hijacked, 0, 'never switched to the attacker');
  t.is(a.machine.book.peek(ID.b), AT.b);
  t.true(a.machine.claims.stats.refused >= 1, 'the claim was refused because the held address answered');
  t.is(a.machine.claims.stats.rebinds, 0);
  t.true(a.machine.stats.probesSent >= 2, 'both addresses were challenged');
});

test('a live peer two rekeys behind the challenger still answers for its address: the insider does not win', async (t) => {
  const suite = await loadSuite();
  const net = new VirtualNet(suite);
  // Back-to-back batches: A is in epoch 3 (it holds 1..3), B is still in epoch 1.
  const a = net.add(AT.a, ID.a, [{ id: ID.b, at: AT.b }], [1, 2, 3]);
  net.add(AT.b, ID.b, [{ id: ID.a, at: AT.a }], [1]);
  t.is(a.machine.book.peek(ID.b), AT.b);
  const m = insider(suite, 3);
  net.inject(AT.m, AT.a, m.claim(ID.b));
  for (let k = 0; k < 2 * CLAIM_PERIODS; k++) {
    answerAll(net, m, AT.m, ID.b);
    net.advance(DEFAULT_GOSSIP_ROUND_MS);
  }
  t.is(a.machine.book.peek(ID.b), AT.b, 'B answered the challenge sent under an epoch it still holds');
  t.like(a.machine.claims.stats, { refused: 1, rebinds: 0 });
});

test('a peer that really moved (the held address silent, the new one answering) is reached there', async (t) => {
  const suite = await loadSuite();
  const net = new VirtualNet(suite);
  const a = net.add(AT.a, ID.a, [{ id: ID.b, at: AT.b }]);
  net.add(AT.b, ID.b, [{ id: ID.a, at: AT.a }]);
  net.advance(5 * DEFAULT_GOSSIP_ROUND_MS);
  // B's NAT rebinds: the old mapping is gone, and B (same id) now speaks from another port.
  net.silent.add(AT.b);
  net.add(AT.b2, ID.b, [{ id: ID.a, at: AT.a }]);
  net.advance(2 * CLAIM_PERIODS * DEFAULT_GOSSIP_ROUND_MS);
  t.is(a.machine.book.peek(ID.b), AT.b2);
  t.is(a.machine.claims.stats.rebinds, 1);
});

test('untrusted bytes: junk, truncated and oversize datagrams are counted, never thrown', async (t) => {
  const suite = await loadSuite();
  const net = new VirtualNet(suite);
  const a = net.add(AT.a, ID.a, []);
  const junk = [
    new Uint8Array(0),
    Uint8Array.of(6, 1),
    Uint8Array.of(6, 1, 0xff, 0xff, 0xff, 0xff, 0xff),
    new Uint8Array(100).fill(0xaa),
    new Uint8Array(a.machine.maxDatagramBytes + 1),
  ];
  for (const d of junk) t.notThrows(() => net.inject(AT.m, AT.a, d));
  t.is(a.machine.stats.malformed, junk.length);
  t.is(a.machine.stats.datagramsIn, junk.length);
});

test('options out of range are refused at construction', async (t) => {
  const suite = await loadSuite();
  const handler = {
    admit: () => true,
    deliver: () => undefined,
    pullFromCore: () => undefined,
    reseed: () => undefined,
  };
  t.throws(() => new GossipLinkMachine(suite, handler, { maxDatagramBytes: 100 }), {
    instanceOf: RangeError,
  });
  t.throws(() => new GossipLinkMachine(suite, handler, { roundMs: 1 }), { instanceOf: RangeError });
  t.throws(() => new GossipLinkMachine(suite, handler, { idleRoundEvery: 0 }), { instanceOf: RangeError });
});
