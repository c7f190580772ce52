/**
 * `Transport<number>` over the simulated network, so protocol hosts written against
 * net/transport.ts run unchanged in simulation. Addresses are simulator node ids.
 *
 * Usage, inside a node factory:
 *   sim.addNode((env) => {
 *     const transport = new SimTransport(env);
 *     startProtocol(transport, env);          // calls transport.setHandler(...)
 *     return transport;                       // it is also the node's NodeHandlers
 *   });
 *
 * Datagram semantics: sends may be lost silently (send still returns true); `send` returns
 * false only when this incarnation is dead or the transport is closed. There are no links to
 * come up or go down, so onPeerUp/onPeerDown are never called. Oversize sends throw.
 */

import type { Transport, TransportHandler } from '../transport.js';
import type { NodeEnv, NodeHandlers, NodeId } from './simulator.js';

/** Default size bound, as for a UDP datagram. */
export const SIM_MAX_MESSAGE_BYTES = 65507;

export class SimTransport implements Transport<NodeId>, NodeHandlers<Uint8Array> {
  readonly local: NodeId;
  private handler: TransportHandler<NodeId> | null = null;
  private closed = false;

  constructor(
    private readonly env: NodeEnv<Uint8Array>,
    readonly maxMessageBytes: number = SIM_MAX_MESSAGE_BYTES,
  ) {
    this.local = env.id;
  }

  send(to: NodeId, data: Uint8Array): boolean {
    if (data.length > this.maxMessageBytes) {
      throw new RangeError(`message of ${data.length} bytes exceeds ${this.maxMessageBytes}`);
    }
    if (this.closed) return false;
    return this.env.send(to, data);
  }

  setHandler(handler: TransportHandler<NodeId>): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    this.closed = true;
    this.handler = null;
    return Promise.resolve();
  }

  /** NodeHandlers: the simulator delivers here. Messages arriving with no handler are dropped. */
  onMessage(from: NodeId, msg: Uint8Array): void {
    if (this.closed) return;
    this.handler?.onMessage(from, msg);
  }

  /** NodeHandlers: the incarnation ended; the transport is closed for good. */
  onStop(): void {
    this.closed = true;
    this.handler = null;
  }
}
