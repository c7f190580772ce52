/**
 * Adversary: an eavesdropper holding a copy of a core server's data directory (the leaf-state
 * store and its data.key) taken at epoch E — or, equally, a core server revoked later: both hold
 * every key of the leaf tree at E. It then sees every later rekey part, which in a gossip
 * deployment cross the network as readable UDP datagrams; here the leaves run on TLS and the
 * test taps the parts each leaf receives, to stay independent of the overlay.
 *
 * Without post-compromise recovery the own keys of leaves never change while they stay, so the
 * adversary follows every later group key. With it, every leaf's own key is replaced, from its
 * new TLS session's exporter, when it re-links (here: a cut of every leaf link through a proxy)
 * and the adversary is locked out once those refreshes are done.
 *
 * One real `keyglass server` process on 127.0.0.1, real TLS; bounded by `until` timeouts.
 */
import test from 'ava';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { LeafKeys, KeytreeError, decodeHeader, decodePart, type EpochHeader } from '../../keytree/index.js';
import { LeafStateMachine, LeafStore } from '../../core-group/leaf-state/index.js';
import { LeafClient, type LeafFrameBody } from '../../gossip-edge/index.js';
import { Cluster, GROUP, until, type ServerProc } from '../server/cluster.js';
import { FaultProxy } from '../server/proxy.js';

type Push = LeafFrameBody<'rekeyPush'>;

interface Tapped {
  readonly name: string;
  readonly client: LeafClient;
  /** Key ids (the LeafClient 'key' event) by epoch: what the leaf holds. */
  readonly keyIds: Map<number, string>;
  /** Welcomes or resumes on a new link so far. */
  links: number;
}

const cluster = new Cluster();
let proxy: FaultProxy | undefined;
const stolenDir = mkdtempSync(join(tmpdir(), 'kg-stolen-'));
/** Every rekey part any leaf received, by epoch: the eavesdropper's view of the wire. */
const wire = new Map<number, { header: Uint8Array; parts: Uint8Array[] }>();

test.after.always(async () => {
  await Promise.all(tapped.map((l) => l.client.close()));
  await proxy?.close();
  await cluster.stop();
  rmSync(stolenDir, { recursive: true, force: true });
});

const tapped: Tapped[] = [];

/** A leaf on `port` whose received rekey pushes are copied to `wire`. */
async function leaf(name: string, port: number): Promise<Tapped> {
  const m = await cluster.issue('leaf', name);
  const client = new LeafClient({
    backoffBaseMs: 50,
    backoffMaxMs: 300,
    welcomeTimeoutMs: 5000,
    maxAttempts: 60,
  });
  const t: Tapped = { name, client, keyIds: new Map(), links: 0 };
  client.on('key', (k) => t.keyIds.set(k.epoch, k.keyId));
  client.on('connected', () => t.links++);
  client.on('error', () => {});
  // The tap: every rekey the client verified and is about to apply, by TLS push or by gossip
  // datagram alike — what an eavesdropper on the wire (the UDP overlay) sees.
  const inner = client as unknown as { applyPush(push: Push, header: EpochHeader, live: boolean): unknown };
  const applyPush = inner.applyPush.bind(client);
  inner.applyPush = (push: Push, header: EpochHeader, live: boolean): unknown => {
    const seen = wire.get(header.epoch) ?? { header: push.header, parts: [] };
    seen.parts.push(...push.parts);
    wire.set(header.epoch, seen);
    return applyPush(push, header, live);
  };
  tapped.push(t);
  await client.connect({
    servers: [{ host: '127.0.0.1', port }],
    credentials: { certPem: m.certPem, keyPem: m.keyPem },
    trust: { caPem: cluster.caPem },
  });
  return t;
}

/** The server's epoch is stable and every leaf holds its key. */
async function settled(s: ServerProc, leaves: readonly Tapped[]): Promise<number> {
  let epoch = -1;
  let since = Date.now();
  await until(
    'leaf state settled',
    async () => {
      const st = await cluster.status(s);
      if (st.leafEpoch !== epoch || st.pendingBatch > 0) {
        epoch = st.leafEpoch;
        since = Date.now();
        return false;
      }
      return Date.now() - since > 800 && leaves.every((l) => l.keyIds.has(epoch));
    },
    20_000,
  );
  return epoch;
}

/** Every key of the stolen tree's members, as leaf states: the adversary's starting point. */
async function openStolen(suite: CipherSuite, dir: string): Promise<LeafKeys[]> {
  const machine = new LeafStateMachine({
    suite,
    group: new TextEncoder().encode(GROUP),
    secret: new Uint8Array(32),
    leaseMs: 3000,
  });
  const store = LeafStore.open(join(dir, 'leaf-state'), machine, { suite });
  try {
    const out: LeafKeys[] = [];
    for (const name of machine.parts().entries.keys()) {
      const w = machine.welcomeFor(name);
      if (w !== undefined) out.push(LeafKeys.fromWelcome(w));
    }
    return out;
  } finally {
    store.close();
  }
}

/** Follows the tapped parts from each stolen path as far as they go; the group keys reached, by epoch. */
function follow(suite: CipherSuite, start: readonly LeafKeys[]): Map<number, Set<string>> {
  const reached = new Map<number, Set<string>>();
  for (let keys of start) {
    for (;;) {
      const next = wire.get(keys.epoch + 1);
      if (next === undefined) break;
      const header = decodeHeader(next.header);
      let moved: LeafKeys | undefined;
      for (const bytes of next.parts) {
        try {
          moved = keys.processPart(suite, header, decodePart(bytes));
          break;
        } catch (e) {
          if (!(e instanceof KeytreeError)) throw e;
        }
      }
      if (moved === undefined) break;
      keys = moved;
      const id = keyIdOf(suite, keys.groupKey());
      reached.set(keys.epoch, (reached.get(keys.epoch) ?? new Set()).add(id));
    }
  }
  return reached;
}

/** The LeafClient's key id: 8 bytes of SHA-256("keyglass key id v1" ‖ group key), hex. */
function keyIdOf(suite: CipherSuite, groupKey: Uint8Array): string {
  const label = new TextEncoder().encode('keyglass key id v1');
  const input = new Uint8Array(label.length + groupKey.length);
  input.set(label);
  input.set(groupKey, label.length);
  return Buffer.from(suite.sha256(input).subarray(0, 8)).toString('hex');
}

test('a stolen data directory stops yielding group keys once every leaf re-linked', async (t) => {
  const suite = await loadSuite();
  await cluster.init();
  await cluster.startServers(1);
  const server = cluster.servers[0]!;
  proxy = await FaultProxy.start(server.ports.leaf);
  const leaves = [await leaf('victim', proxy.port), await leaf('bystander', proxy.port)];
  const E = await settled(server, leaves);

  // The theft: a copy of the data directory at epoch E.
  cpSync(join(cluster.dir, `data-${server.name}`), stolenDir, { recursive: true });
  const stolen = await openStolen(suite, stolenDir);
  t.is(stolen.length, 2);
  t.true(stolen.every((k) => k.epoch === E));

  // The attack works: a join later, the copy still yields the current group key.
  leaves.push(await leaf('joiner', server.ports.leaf));
  const e1 = await settled(server, leaves);
  t.true(e1 > E);
  t.true(
    follow(suite, stolen).get(e1)?.has(leaves[0]!.keyIds.get(e1)!) === true,
    'the adversary follows at first',
  );

  // Every leaf present at E re-links (a network cut of their links; they resume on new sessions).
  proxy.partition();
  await new Promise((r) => setTimeout(r, 200));
  proxy.heal();
  await until('both leaves re-linked', () => leaves.slice(0, 2).every((l) => l.links >= 2), 15_000);
  await settled(server, leaves);
  leaves.push(await leaf('later', server.ports.leaf));
  const now = await settled(server, leaves);
  const current = leaves[0]!.keyIds.get(now)!;
  t.true(
    leaves.every((l) => l.keyIds.get(now) === current),
    'every leaf on the current key',
  );

  const reached = follow(suite, stolen);
  t.log(
    `stolen at epoch ${E}; current epoch ${now}; adversary reached epochs ${[...reached.keys()].join(',')}`,
  );
  t.false(reached.get(now)?.has(current) === true, 'the stolen copy derives the current group key');
});
