/**
 * Real GossipLinks on 127.0.0.1 for address tests, and a UDP NAT in front of one of them.
 *
 * `UdpNat`: the peer behind it sends everything to the NAT's inside socket, which forwards it to
 * one destination from its outside socket; what reaches the outside socket goes back to the peer
 * from the inside socket. `rebind()` replaces the outside socket (a new public port, the old one
 * closed), as a NAT does when a mapping expires: the peer's traffic now comes from elsewhere.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { CipherSuite } from '../../crypto/index.js';
import type { GossipLinkOptions, PeerEndpoint } from '../../gossip-edge/index.js';
import { GossipLink } from '../../leaf-sdk/index.js';

async function udp(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  return s;
}

export class UdpNat {
  private outside!: Socket;

  private constructor(
    private readonly inside: Socket,
    private readonly peer: { host: string; port: number },
    private readonly destination: { host: string; port: number },
  ) {
    inside.on('message', (data) => this.outside.send(data, destination.port, destination.host));
  }

  /** A NAT for `peer` (its real endpoint), that talks to `destination` only. */
  static async start(
    peer: { host: string; port: number },
    destination: { host: string; port: number },
  ): Promise<UdpNat> {
    const nat = new UdpNat(await udp(), peer, destination);
    await nat.rebind();
    return nat;
  }

  /** Where the peer sends (its view of the destination). */
  get insidePort(): number {
    return this.inside.address().port;
  }

  /** Where the destination sees the peer (its public address now). */
  get outsidePort(): number {
    return this.outside.address().port;
  }

  /** A new public port; the old mapping is gone. */
  async rebind(): Promise<void> {
    const old = this.outside as Socket | undefined;
    const s = await udp();
    s.on('message', (data) => this.inside.send(data, this.peer.port, this.peer.host));
    this.outside = s;
    old?.close();
  }

  close(): void {
    this.outside.close();
    this.inside.close();
  }
}

/** A started link at `slot`, holding `groupKey` for epoch 1 (its handler accepts every item). */
export async function startedLink(
  suite: CipherSuite,
  slot: number,
  groupKey: Uint8Array,
  opts: GossipLinkOptions = {},
): Promise<GossipLink> {
  const link = await GossipLink.bind(
    suite,
    { admit: () => true, deliver: () => undefined, pullFromCore: () => undefined, reseed: () => undefined },
    { roundMs: 20, idleRoundEvery: 1, ...opts },
  );
  link.start(slot, 1, 4);
  link.installKey(1, groupKey);
  return link;
}

/** Seeds `link` with one active peer at `at`. */
export function seedWith(link: GossipLink, id: number, at: { host: string; port: number }): void {
  const p: PeerEndpoint = { id, host: at.host, port: at.port };
  link.seed({ active: [p], passive: [], contacts: [], stream: { origin: 1, next: 0 } });
}
