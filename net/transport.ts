/**
 * The one transport interface. Protocols are sans-IO; a host adapter moves their output
 * through a `Transport` and feeds what arrives back in. The simulated network, TCP+TLS and
 * UDP all implement it, so the same protocol code runs in simulation and for real.
 *
 * Semantics are message-oriented and unreliable-by-contract: `send` may drop (a datagram
 * lost, a peer not connected, a full send buffer), and returns false when it knows it did.
 * Reliability, ordering and authentication of content belong to the protocols above.
 * Every message is bounded by `maxMessageBytes`; larger sends throw, larger receipts close
 * (stream transports) or are dropped and counted (datagram transports).
 */

/** Why a peer link went down; stable strings, safe as metric labels. */
export type LinkDownReason =
  | 'closed' // either side closed cleanly
  | 'error' // socket error
  | 'bad-frame' // peer sent an oversize or malformed frame
  | 'auth' // TLS handshake or peer identity refused
  | 'timeout'; // handshake or idle timeout

export interface TransportHandler<A> {
  /** A message arrived from `from` (for stream transports: the verified peer identity). */
  onMessage(from: A, data: Uint8Array): void;
  /** A link to `peer` is up (stream transports only). */
  onPeerUp?(peer: A): void;
  /** A link to `peer` went down (stream transports only). */
  onPeerDown?(peer: A, reason: LinkDownReason, detail?: string): void;
}

export interface Transport<A> {
  /** This endpoint's own address or identity. */
  readonly local: A;
  /** Largest message `send` accepts. */
  readonly maxMessageBytes: number;
  /** Queue a message to `to`; false if it was certainly not sent (no link, buffer full, closed). */
  send(to: A, data: Uint8Array): boolean;
  setHandler(handler: TransportHandler<A>): void;
  close(): Promise<void>;
}

/**
 * A listening stream transport of authenticated links (addresses are verified peer identities):
 * what a server's leaf port needs, whether its TLS runs on this thread (TlsTransport) or on a
 * worker thread (ThreadTransport).
 */
export interface LinkTransport extends Transport<string> {
  /** Accept links on host:port (port 0 = ephemeral); resolves with the bound address. */
  listen(port: number, host?: string): Promise<{ host: string; port: number }>;
  /** Close the link to `peer` (e.g. its credential was revoked). */
  disconnect(peer: string, detail?: string): void;
  /** The IP address the up link to `peer` comes from; undefined without an up link. */
  remoteAddress(peer: string): string | undefined;
}
