/**
 * Kit for the revoked-core-server attacks: CA-signed CRLs, a group of in-process core servers
 * over real mutual TLS (the server double of test/leaf, backed by the real leaf state machine),
 * leaves running the real LeafClient (with its UDP gossip link), and what a revoked core server
 * that keeps running can do with its stolen key: welcome leaves, and sign rekeys and data-stream
 * entries that it injects into a leaf's UDP gossip endpoint through the shipped edge relay.
 */
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { DataKeyring, DataSealer } from '../../gossip-edge/index.js';
import { LeafClient, type LeafClientEvents, type LeafClientOptions } from '../../leaf-sdk/index.js';
import { EdgeRelay, type GossipTarget, type SignedEpochParts } from '../../server/index.js';
import { signBatch } from '../../leaf-plane/index.js';
import { makeCa, makeMember, type TestCa } from '../auth/pki-helpers.js';
import { TestCoreGroup, type TestCoreServer } from '../leaf/server-double.js';

/** CA-signed CRLs for the attacks (the test PKI's). */
export { makeCrl as crlOf } from '../auth/pki-helpers.js';

export interface AdversaryLeaf {
  readonly client: LeafClient;
  readonly keys: LeafClientEvents['key'][0][];
  readonly messages: LeafClientEvents['message'][0][];
  readonly errors: Error[];
  /** Identities of the servers that welcomed us, in order. */
  readonly connected: string[];
}

export interface CoreWorld {
  readonly suite: CipherSuite;
  readonly ca: TestCa;
  readonly group: TestCoreGroup;
  /** The servers by name. */
  server(name: string): TestCoreServer;
  /** A leaf linking to the named servers in that order (resolves at its welcome). */
  leaf(
    name: string,
    order: readonly string[],
    opts?: { crlPem?: string; options?: LeafClientOptions },
  ): Promise<AdversaryLeaf>;
}

/** Core servers `names` (certificates of one test CA) and leaves of group 'g'; torn down with the test. */
export async function coreWorld(
  t: { teardown(fn: () => Promise<void>): void },
  names: readonly string[],
): Promise<CoreWorld> {
  const suite = await loadSuite();
  const ca = await makeCa('Adversary Test CA');
  const group = new TestCoreGroup(suite, 3000, 25);
  for (const name of names) {
    const m = await makeMember(ca, name, { group: 'g', role: 'core' });
    await group.addServer(name, m.credentials, ca.info);
  }
  group.startBatching();
  const clients: LeafClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close({ leave: false })));
    await group.stop();
  });
  const server = (name: string): TestCoreServer => {
    const s = group.servers.find((x) => x.name === name);
    if (s === undefined) throw new Error(`no server ${name}`);
    return s;
  };
  return {
    suite,
    ca,
    group,
    server,
    async leaf(name, order, opts = {}) {
      const m = await makeMember(ca, name, { group: 'g', role: 'leaf' });
      const client = new LeafClient({
        suite,
        backoffBaseMs: 20,
        backoffMaxMs: 200,
        welcomeTimeoutMs: 3000,
        maxAttempts: 6,
        ...opts.options,
      });
      clients.push(client);
      const leaf: AdversaryLeaf = { client, keys: [], messages: [], errors: [], connected: [] };
      client.on('key', (k) => leaf.keys.push(k));
      client.on('message', (msg) => leaf.messages.push(msg));
      client.on('error', (e) => leaf.errors.push(e));
      client.on('connected', (c) => leaf.connected.push(c.server));
      await client.connect({
        servers: order.map((n) => ({ host: '127.0.0.1', port: server(n).port })),
        credentials: m.credentials,
        trust: { caPem: ca.pem, ...(opts.crlPem !== undefined ? { crlPem: opts.crlPem } : {}) },
      });
      return leaf;
    },
  };
}

/** Waits until `cond` holds or `ms` passed; says which (never throws: the caller asserts). */
export async function settle(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * What a revoked core server does with its stolen signing key: its own edge relay (the shipped
 * one, signing with that key) aimed at one leaf's UDP gossip endpoint, MACing under the group
 * key the server holds.
 */
export class RogueRelay {
  private constructor(
    private readonly suite: CipherSuite,
    private readonly server: TestCoreServer,
    private readonly relay: EdgeRelay,
  ) {}

  static async open(suite: CipherSuite, server: TestCoreServer): Promise<RogueRelay> {
    const relay = await EdgeRelay.bind(
      suite,
      { host: '127.0.0.1', port: 0, fanout: 1, maxDatagramBytes: 8192 },
      { publicKey: server.publicKey, sign: (message) => suite.ed25519Sign(server.seed, message) },
    );
    return new RogueRelay(suite, server, relay);
  }

  private target(leaf: LeafClient): GossipTarget {
    const link = leaf.gossip!;
    const { host, port } = link.endpoint;
    return { id: link.self!, host, port, endpoint: `${host}:${port}` };
  }

  /**
   * A forged epoch: the server's own replica takes in an admission nobody ordered and cuts it
   * (fresh keys it chose), signs the batch with its key and routes the leaf's part to it.
   * Returns the forged epoch. (Its replica is ahead of the group's from here on: the group's
   * next cuts are stale to it and ignored.)
   */
  forgeRekey(leaf: LeafClient, groupKeyOfCurrent: Uint8Array): number {
    const m = this.server.machine;
    const now = Date.now();
    m.apply({
      kind: 'admit',
      value: { name: 'ghost', serial: '0badc0de', fingerprint: new Uint8Array(32), now },
    });
    const batch = m.apply({ kind: 'cutBatch', value: { epoch: m.epoch + 1, now } }).batch!;
    this.relay.installKey(batch.epoch - 1, groupKeyOfCurrent);
    const signed: SignedEpochParts = {
      epoch: batch.epoch,
      header: batch.headerBytes,
      signer: this.server.publicKey,
      signature: signBatch(this.suite, this.server.seed, batch),
      split: batch.rekey.split,
    };
    this.relay.routeEpoch(signed, [this.target(leaf)]);
    return batch.epoch;
  }

  /** A data envelope sealed under the current group key, as an entry of this server's signed stream. */
  injectData(leaf: LeafClient, epoch: number, groupKey: Uint8Array, text: string): void {
    const keyring = new DataKeyring(this.suite, { now: Date.now });
    keyring.install(epoch, groupKey);
    const envelope = new DataSealer(this.suite, keyring, { sender: 4242 }).seal(
      new TextEncoder().encode(text),
    );
    this.relay.installKey(epoch, groupKey);
    this.relay.injectData(envelope, [this.target(leaf)]);
    this.relay.flushData();
  }

  close(): Promise<void> {
    return this.relay.close();
  }
}
