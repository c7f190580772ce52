/**
 * Live connections of admitted peers, so that a new CRL takes effect at once: when the
 * revocation registry reports newly revoked serials, every tracked connection whose
 * certificate is among them is closed and reported (the server then evicts the member
 * with an immediate rekey).
 */
import type { Socket } from 'node:net';
import type { NewlyRevoked, RevocationRegistry } from './crl.js';
import type { AcceptedPeer } from './verify.js';

export type EvictionHandler = (peer: AcceptedPeer, reason: 'revoked') => void;

interface Tracked {
  readonly socket: Socket;
  readonly peer: AcceptedPeer;
}

const keyOf = (issuerFingerprint: string, serial: string): string => `${issuerFingerprint}/${serial}`;

export class LiveConnections {
  private readonly bySerial = new Map<string, Set<Tracked>>();
  private readonly unsubscribe: () => void;

  constructor(
    revocation: RevocationRegistry,
    private readonly onEvicted: EvictionHandler = () => {},
  ) {
    this.unsubscribe = revocation.onRevoked((revoked) => this.closeRevoked(revoked));
  }

  get size(): number {
    let n = 0;
    for (const s of this.bySerial.values()) n += s.size;
    return n;
  }

  /** Tracks an admitted connection until it closes. */
  track(socket: Socket, peer: AcceptedPeer): void {
    const key = keyOf(peer.issuer.sha256, peer.certificate.serial);
    const entry: Tracked = { socket, peer };
    let set = this.bySerial.get(key);
    if (!set) this.bySerial.set(key, (set = new Set()));
    set.add(entry);
    socket.once('close', () => {
      set.delete(entry);
      if (set.size === 0 && this.bySerial.get(key) === set) this.bySerial.delete(key);
    });
  }

  private closeRevoked(revoked: readonly NewlyRevoked[]): void {
    for (const r of revoked) {
      const set = this.bySerial.get(keyOf(r.issuerFingerprint, r.serial));
      if (!set) continue;
      for (const t of [...set]) {
        t.socket.destroy();
        this.onEvicted(t.peer, 'revoked');
      }
    }
  }

  /** Stops listening for revocations (does not close connections). */
  dispose(): void {
    this.unsubscribe();
  }
}
