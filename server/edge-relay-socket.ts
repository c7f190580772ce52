/**
 * EdgeRelay — the UDP host of the core server's edge relay (gossip-edge EdgeRelayMachine): the
 * machine with its socket bound and its effects run (datagrams on the socket; the end of a turn
 * as the next event-loop turn). The routing, the data stream, the pull budget and the MACs are
 * the machine's; this file only moves bytes and time. The leaf plane (leaf-plane/edge.ts) drives
 * it as the machine it is.
 */
import type { CipherSuite } from '../crypto/index.js';
import { UdpTransport } from '../net/index.js';
import { EdgeRelayMachine, type RelayOptions, type StreamSigner } from '../gossip-edge/index.js';

export class EdgeRelay extends EdgeRelayMachine {
  private readonly udp: UdpTransport;

  private constructor(udp: UdpTransport, suite: CipherSuite, opts: RelayOptions, signer: StreamSigner) {
    // The output needs the relay it flushes, which exists only once super() returned.
    const self: { relay?: EdgeRelay } = {};
    super(suite, opts, signer, {
      datagram: (to, bytes) => udp.send(to, bytes),
      flushAtTurnEnd: () => void setImmediate(() => self.relay?.flushData()),
    });
    this.udp = udp;
    self.relay = this;
  }

  /** Binds the relay's UDP socket (`override`: the static side inherits Function.bind); `signer` signs its data stream. */
  static override async bind(
    suite: CipherSuite,
    opts: RelayOptions,
    signer: StreamSigner,
  ): Promise<EdgeRelay> {
    const udp = await UdpTransport.bind({
      host: opts.host,
      port: opts.port,
      maxDatagramBytes: opts.maxDatagramBytes,
    });
    try {
      return new EdgeRelay(udp, suite, opts, signer);
    } catch (e) {
      await udp.close();
      throw e;
    }
  }

  get local(): string {
    return this.udp.local;
  }

  /** Stops the machine and closes the socket. */
  override close(): Promise<void> {
    super.close();
    return this.udp.close();
  }
}
