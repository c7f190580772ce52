/**
 * A malicious leaf of the gossip tier, for the adversary tests: a real LeafClient (a valid leaf
 * certificate, admitted by a real core server, so it holds the current group key and receives
 * the genuine signed rekey pushes of its own path over TLS) plus its own UDP socket on which it
 * speaks the gossip protocol with the real codec and MAC code — whatever a modified client could
 * send. Its client runs without a gossip link, so the only gossip it takes part in is what the
 * test makes it send.
 *
 * The kit reads the insider's own secrets out of its client (its path keys, the pushes it was
 * sent): private fields, read here by name because an attacker has its whole process memory.
 */
import { createSocket, type Socket } from 'node:dgram';
import { encode, peekFrameHeader } from '../../wire/index.js';
import * as gossipEdge from '../../gossip-edge/index.js';
import {
  MAX_LEAF_FRAME_BYTES,
  MacAuthenticator,
  RekeyPush as RekeyPushCodec,
  type Envelope,
  type GossipBody,
  type Item,
  type RekeyPush,
} from '../../gossip-edge/index.js';
import type { GossipLink, LeafClient } from '../../leaf-sdk/index.js';
import type { CipherSuite } from '../../crypto/index.js';
import type { LeafKeys } from '../../keytree/index.js';
import type { LocalCluster, LocalLeaf } from '../../cli/cluster/index.js';

/** Address probes as this build speaks them (absent before issue 17: then nothing to answer). */
interface ProbeCodec {
  PROBE_FRAME_TYPE: number;
  openAddrProbe(
    auth: MacAuthenticator,
    bytes: Uint8Array,
  ): { answer: boolean; epoch: number; nonce: Uint8Array } | undefined;
  encodeAddrProbe(
    auth: MacAuthenticator,
    p: { answer: boolean; epoch: number; sender: number; nonce: Uint8Array },
  ): Uint8Array | undefined;
}
const probeCodec = (gossipEdge as unknown as Partial<ProbeCodec>).openAddrProbe
  ? (gossipEdge as unknown as ProbeCodec)
  : undefined;

/** What an insider reads from its own client. */
interface ClientInsides {
  keys: LeafKeys | undefined;
  onPush(push: RekeyPush, live: boolean): unknown;
}

/** A gossip link's node as the tests observe it (diagnostics only: what it stores, its views). */
interface NodeInsides {
  seen(id: number): boolean;
  readonly views: { active(): number[]; passive(): number[]; contacts(level: number): number[] };
}

/** The gossip node behind a link's machine (undefined before it started). */
export function nodeOf(link: GossipLink): NodeInsides | undefined {
  return (link.machine as unknown as { node: NodeInsides | undefined }).node;
}

/**
 * Makes a link deaf to every datagram but those from `allowed` addresses until the returned
 * function is called (a victim that lags behind its peers, e.g. a congested network path).
 */
export function deafen(link: GossipLink, allowed: readonly string[]): () => void {
  const l = link as unknown as { onDatagram(from: string, data: Uint8Array): void };
  const original = l.onDatagram.bind(l);
  l.onDatagram = (from, data) => {
    if (allowed.includes(from)) original(from, data);
  };
  return () => {
    l.onDatagram = original;
  };
}

/** Every peer in any view of a link's node. */
export function viewsOf(link: GossipLink, levels = 10): number[] {
  const v = nodeOf(link)?.views;
  if (v === undefined) return [];
  const out = [...v.active(), ...v.passive()];
  for (let l = 1; l <= levels; l++) out.push(...v.contacts(l));
  return out;
}

/** A counter of a link's node by name (0 when this build does not have it). */
export function dropped(link: GossipLink, reason: string): number {
  return (link.counters.dropped as Record<string, number>)[reason] ?? 0;
}

/**
 * An item carrying a genuine signed part under labels of the attacker's choosing (what the relay
 * would have built is id rekeyId(header epoch, part position) and the part's own scope).
 */
export function relabelled(
  push: RekeyPush,
  label: { id: number; epoch: number; scopeStart: number; scopeEnd: number },
): Item {
  const payload = encode(RekeyPushCodec, { ...push, parts: [push.parts[0]!] }, MAX_LEAF_FRAME_BYTES);
  return { ...label, bytes: payload.length, payload };
}

export class Insider {
  /** Genuine signed pushes the server sent this leaf over TLS, oldest first. */
  readonly pushes: RekeyPush[] = [];
  /** Datagrams that reached the insider's socket. */
  readonly received: { from: string; data: Uint8Array }[] = [];
  private readonly auth: MacAuthenticator;

  private constructor(
    readonly leaf: LocalLeaf,
    readonly socket: Socket,
    readonly port: number,
    suite: CipherSuite,
  ) {
    this.auth = new MacAuthenticator(suite, 8);
    socket.on('message', (data, rinfo) => {
      const bytes = new Uint8Array(data);
      this.received.push({ from: `${rinfo.address}:${rinfo.port}`, data: bytes });
      this.answerProbe(bytes, rinfo);
    });
  }

  /** Claiming sender id; when set, every address challenge is answered as that peer (a full insider). */
  answerAs: number | undefined;

  /** Echoes a challenge's nonce from here, as `answerAs` would: the MAC key is all it takes. */
  private answerProbe(bytes: Uint8Array, to: { address: string; port: number }): void {
    if (probeCodec === undefined || this.answerAs === undefined) return;
    if (peekFrameHeader(bytes, 1 << 16).type !== probeCodec.PROBE_FRAME_TYPE) return;
    const p = probeCodec.openAddrProbe(this.auth, bytes);
    if (p === undefined || p.answer) return;
    const answer = probeCodec.encodeAddrProbe(this.auth, {
      answer: true,
      epoch: p.epoch,
      sender: this.answerAs,
      nonce: p.nonce,
    });
    if (answer !== undefined) this.socket.send(answer, to.port, to.address);
    this.probesAnswered++;
  }

  /** Challenges it answered (as `answerAs`). */
  probesAnswered = 0;

  /** Admits a leaf without a gossip link, records the pushes it is sent from then on, binds its socket. */
  static async join(cluster: LocalCluster, name: string, suite: CipherSuite, server = 0): Promise<Insider> {
    const leaf = await cluster.leaf(name, server, { gossip: false });
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const insider = new Insider(leaf, socket, socket.address().port, suite);
    insider.holdKey();
    insider.tap();
    return insider;
  }

  /** Records the pushes the client is sent from now on, and the key each one leads to. */
  private tap(): void {
    const c = this.insides;
    const original = c.onPush.bind(c);
    c.onPush = (push, live) => {
      this.pushes.push(push);
      const outcome = original(push, live);
      if (c.keys !== undefined) this.holdKey(); // every epoch's key, as the client installs it
      return outcome;
    };
  }

  /** The client's protocol machine (LeafSession), as the tests observe it. */
  private get insides(): ClientInsides {
    return (this.client as unknown as { session: ClientInsides }).session;
  }

  get client(): LeafClient {
    return this.leaf.client;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The insider's slot (its gossip id) and epoch. */
  get slot(): number {
    return this.insides.keys!.slot;
  }

  get epoch(): number {
    return this.insides.keys!.epoch;
  }

  /** Takes the current group key into the insider's MAC keys (what its own client holds). */
  holdKey(): number {
    const keys = this.insides.keys!;
    const groupKey = keys.groupKey();
    this.auth.install(keys.epoch, groupKey);
    groupKey.fill(0);
    return keys.epoch;
  }

  /** The newest genuine push it holds (of the current epoch once `pushes` caught up). */
  newestPush(): RekeyPush {
    const p = this.pushes.at(-1);
    if (p === undefined) throw new Error('the insider holds no rekey push yet');
    return p;
  }

  /** One MAC'd gossip datagram claiming `sender`, under `epoch` (default: the newest key held). */
  datagram(body: GossipBody, opts: { sender?: number; epoch?: number } = {}): Uint8Array {
    const env: Omit<Envelope, 'tag'> = {
      epoch: opts.epoch ?? this.epoch,
      sender: opts.sender ?? this.slot,
      body,
    };
    const frame = this.auth.seal(env);
    if (frame === undefined) throw new Error(`the insider holds no key of epoch ${env.epoch}`);
    return frame;
  }

  /** A push of `items` (hop 1: the victim relays what it takes). */
  push(items: readonly Item[], opts: { sender?: number; epoch?: number } = {}): Uint8Array {
    return this.datagram({ kind: 'push', hop: 1, items: [...items] }, opts);
  }

  async send(to: { host: string; port: number }, bytes: Uint8Array): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.socket.send(bytes, to.port, to.host, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.socket.close();
  }
}
