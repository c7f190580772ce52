/**
 * The leaf's UDP gossip link (GossipLink) wired to its LeafSession: every item the link receives
 * goes through the session's admission before it is stored or relayed; what the link delivers,
 * the gaps it wants pulled from the core and its reseeds become session events; the session's
 * gossip commands run here. A group key a command carries is wiped after use, with or without a
 * link. What is admitted, and when to start, move or pull, is the session's.
 */
import type { CipherSuite } from '../crypto/index.js';
import type { GossipLinkOptions } from '../gossip-edge/index.js';
import { GossipLink } from './gossip-socket.js';
import type { GossipCommand, LeafSession, LeafSessionEvent } from './session.js';

export class GossipHost {
  /** Items the link delivers now come from our data pull's reply (the session counts them apart). */
  private pulling = false;

  private constructor(readonly link: GossipLink) {}

  /** Binds the UDP socket (`options`: address, datagram size, rounds, protocol tunables). */
  static async bind(
    suite: CipherSuite,
    session: Pick<LeafSession, 'admit'>,
    feed: (event: LeafSessionEvent) => void,
    options: GossipLinkOptions,
  ): Promise<GossipHost> {
    // The handler is made before the host exists: it reaches the host once the link is bound.
    const bound: { host?: GossipHost } = {};
    const link = await GossipLink.bind(
      suite,
      {
        admit: (item) => session.admit(item, Date.now()),
        deliver: (item) => feed({ type: 'gossipDeliver', item, pulled: bound.host?.pulling ?? false }),
        pullFromCore: (req) => feed({ type: 'gossipPull', req, coreStream: bound.host?.link.coreStream }),
        reseed: () => feed({ type: 'gossipReseed' }),
      },
      options,
    );
    bound.host = new GossipHost(link);
    return bound.host;
  }

  /** Our UDP endpoint, announced to each server that welcomes us. */
  get endpoint(): { readonly host: string; readonly port: number } {
    return this.link.endpoint;
  }

  run(c: GossipCommand): void {
    const link = this.link;
    switch (c.op) {
      case 'start':
        if (!link.started) link.start(c.slot, c.epoch, c.arity);
        return;
      case 'installKey':
        try {
          if (link.started) link.installKey(c.epoch, c.groupKey);
        } finally {
          c.groupKey.fill(0);
        }
        return;
      case 'moveTo':
        if (link.started) link.moveTo(c.slot, c.epoch);
        return;
      case 'seed':
        return link.seed(c.seed);
      case 'noteCoreStream':
        return link.noteCoreStream(c.stream);
      case 'dataPull':
        this.pulling = true;
        try {
          link.onDataPull(c.reply);
        } finally {
          this.pulling = false;
        }
        return;
    }
  }

  close(): Promise<void> {
    return this.link.close();
  }
}

/** A gossip command with no link to run it (gossip off, or closed): only its key needs wiping. */
export function discardGossipCommand(c: GossipCommand): void {
  if (c.op === 'installKey') c.groupKey.fill(0);
}
