/**
 * Kit for adversaries that hold the leaf tree of some epoch E — a copy of a core server's data
 * directory (the leaf-state store with its data.key) or a core server revoked later — and see
 * every later rekey part. In a gossip deployment parts cross the network as readable UDP
 * datagrams; the kit taps what each test leaf verified and is about to apply (TLS push or gossip
 * datagram alike), which is exactly what such an eavesdropper sees, without depending on the
 * overlay's reach.
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { CipherSuite } from '../../crypto/index.js';
import { LeafKeys, type EpochHeader } from '../../keytree/index.js';
import { followStolenTree } from '../../sim/stolen-tree.js';
import { groupKeyId } from '../../sim/system/ledger.js';
import { LeafStateMachine, LeafStore } from '../../leaf-plane/index.js';
import { FileStorage } from '../../server/index.js';
import { type LeafFrameBody } from '../../gossip-edge/index.js';
import { LeafClient } from '../../leaf-sdk/index.js';
import { GROUP, until, type LocalCluster, type ServerProc } from '../../cli/cluster/index.js';

type Push = LeafFrameBody<'rekeyPush'>;

export interface TappedLeaf {
  readonly name: string;
  readonly client: LeafClient;
  /** Key ids (the LeafClient 'key' event) by epoch: what the leaf holds. */
  readonly keyIds: Map<number, string>;
  /** Welcomes or resumes on a new link so far. */
  links: number;
}

export class TreeThief {
  /** Every rekey part any tapped leaf received, by epoch: the eavesdropper's view of the wire. */
  readonly wire = new Map<number, { header: Uint8Array; parts: Uint8Array[] }>();
  readonly leaves: TappedLeaf[] = [];
  /** The stolen tree's members, as leaf states (steal()). */
  stolen: LeafKeys[] = [];

  constructor(
    private readonly cluster: LocalCluster,
    private readonly suite: CipherSuite,
  ) {}

  /** A leaf that tries `ports` in turn, whose verified rekeys are copied to `wire`. */
  async leaf(name: string, ports: readonly number[]): Promise<TappedLeaf> {
    const m = await this.cluster.issue('leaf', name);
    const client = new LeafClient({
      suite: this.suite, // the session exists from here on, so its rekeys can be tapped
      backoffBaseMs: 50,
      backoffMaxMs: 300,
      welcomeTimeoutMs: 5000,
      maxAttempts: 60,
    });
    const t: TappedLeaf = { name, client, keyIds: new Map(), links: 0 };
    client.on('key', (k) => t.keyIds.set(k.epoch, k.keyId));
    client.on('connected', () => t.links++);
    client.on('error', () => {});
    // LeafSession.applyPush: every verified rekey the leaf applies, whichever path brought it.
    const inner = (client as unknown as { session: object }).session as unknown as {
      applyPush(push: Push, header: EpochHeader, live: boolean, gossip?: boolean): unknown;
    };
    const applyPush = inner.applyPush.bind(inner);
    inner.applyPush = (push: Push, header: EpochHeader, live: boolean, gossip?: boolean): unknown => {
      const seen = this.wire.get(header.epoch) ?? { header: push.header, parts: [] };
      seen.parts.push(...push.parts);
      this.wire.set(header.epoch, seen);
      return applyPush(push, header, live, gossip);
    };
    this.leaves.push(t);
    await client.connect({
      servers: ports.map((port) => ({ host: '127.0.0.1', port })),
      credentials: { certPem: m.certPem, keyPem: m.keyPem },
      trust: { caPem: this.cluster.caPem },
    });
    return t;
  }

  /** `s`'s leaf epoch has been stable for a while and every tapped leaf holds its key. */
  async settled(s: ServerProc, timeoutMs = 20_000): Promise<number> {
    let epoch = -1;
    let since = Date.now();
    await until(
      'leaf state settled',
      async () => {
        const st = await this.cluster.status(s);
        if (st.leafEpoch !== epoch || st.pendingBatch > 0) {
          epoch = st.leafEpoch;
          since = Date.now();
          return false;
        }
        return Date.now() - since > 800 && this.leaves.every((l) => l.keyIds.has(epoch));
      },
      timeoutMs,
    );
    return epoch;
  }

  /** The theft: copies `s`'s data directory to `into` and opens it (store + data.key). */
  steal(s: ServerProc, into: string): LeafKeys[] {
    cpSync(join(this.cluster.dir, `data-${s.name}`), into, { recursive: true });
    const machine = new LeafStateMachine({
      suite: this.suite,
      group: new TextEncoder().encode(GROUP),
      secret: new Uint8Array(32),
      leaseMs: 3000,
    });
    const store = LeafStore.open(new FileStorage(), join(into, 'leaf-state'), machine, { suite: this.suite });
    try {
      this.stolen = [];
      for (const name of machine.parts().entries.keys()) {
        const w = machine.welcomeFor(name);
        if (w !== undefined) this.stolen.push(LeafKeys.fromWelcome(w));
      }
      return this.stolen;
    } finally {
      store.close();
    }
  }

  /** Follows the tapped parts from every stolen path as far as they go: key ids reached, by epoch. */
  follow(): Map<number, Set<string>> {
    return followStolenTree(this.suite, this.stolen, this.wire, (k) => groupKeyId(this.suite, k));
  }

  /** Does the stolen tree yield the key the tapped leaves hold at `epoch`? */
  derives(epoch: number): boolean {
    const id = this.leaves.find((l) => l.keyIds.has(epoch))?.keyIds.get(epoch);
    return id !== undefined && this.follow().get(epoch)?.has(id) === true;
  }

  async close(): Promise<void> {
    await Promise.all(this.leaves.map((l) => l.client.close()));
  }
}
