/**
 * The real keytree rekey through the gossip tier: a LeafKeyTree batch, its RekeySplit parts
 * routed by subtree by the edge relay, relayed leaf to leaf under 5 % loss, and every live leaf
 * recovering the new group key with LeafKeys.processPart from the one part gossip brought it;
 * and a full own-key refresh (post-compromise recovery) through the same tier.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { openRekeyItem, type Item, type SignedEpochParts } from '../../gossip-edge/index.js';
import {
  LeafKeyTree,
  LeafKeys,
  SecrecyChecker,
  decodeHeader,
  decodePart,
  derivedKeySource,
  encodeHeader,
  signedBytes,
  treeKeys,
  type BatchResult,
  type EpochHeader,
  type TreeOp,
} from '../../keytree/index.js';
import { GossipWorld } from '../../sim/gossip/world.js';

const GROUP_BYTES = new TextEncoder().encode('gossip');

/** The header and part a gossip item carries (a push with exactly one part). */
function openPayload(item: Item): { header: EpochHeader; part: ReturnType<typeof decodePart> } {
  const push = openRekeyItem(item);
  return { header: decodeHeader(push.header), part: decodePart(push.parts[0]!) };
}

/** A real batch, signed by the world's simulated core server as the server signs its epochs. */
function signedBy(suite: CipherSuite, w: GossipWorld, res: BatchResult): SignedEpochParts {
  return {
    epoch: res.epoch,
    header: encodeHeader(res.message.header),
    signer: w.signer.publicKey,
    signature: suite.ed25519Sign(w.signer.seed, signedBytes(res.message.header)),
    split: res.split,
  };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function realRekey(n: number, batch: number, seed: number) {
  const suite = await loadSuite('fast');
  const secret = new Uint8Array(32).fill(seed);
  const tree = LeafKeyTree.create(
    {
      suite,
      keySource: derivedKeySource(suite, secret),
      group: GROUP_BYTES,
      arity: 4,
    },
    n,
  );
  const keys: (LeafKeys | undefined)[] = [];
  for (let slot = 0; slot < n; slot++) keys.push(LeafKeys.fromWelcome(tree.welcome(slot)));
  let failures = 0;
  const applyRekey = (leaf: number, item: Item): void => {
    const { header, part } = openPayload(item);
    try {
      keys[leaf] = keys[leaf]!.processPart(suite, header, part);
    } catch {
      failures++;
    }
  };
  const w = new GossipWorld({ n, seed, loss: 0.05, config: { arity: 4 }, applyRekey, suite });
  w.runRounds(3);
  const rng = w.sim.forkRng('departures');
  const departed = new Set<number>();
  while (departed.size < batch) departed.add(rng.int(n));
  const res = tree.applyBatch([...departed].map((slot) => ({ kind: 'leave' as const, slot })));
  const track = w.rekeyWith(signedBy(suite, w, res), [...departed]);
  w.runUntilDelivered([track], Math.ceil(Math.log2(n)) + 30);
  return { w, tree, keys, res, track, failures };
}

for (const [n, batch] of [
  [1024, 4],
  [4096, 64],
] as const) {
  test(`real RekeySplit over gossip, n = ${n}, batch ${batch}: every live leaf recovers the new group key`, async (t) => {
    const { w, tree, keys, res, track, failures } = await realRekey(n, batch, 5);
    t.is(res.moves.length, 0, 'leaves only: no compaction moves');
    t.is(failures, 0);
    const d = w.delivery(track);
    t.is(d.delivered, d.eligible);
    const gk = tree.groupKey()!;
    let recovered = 0;
    let bytes = 0;
    for (let slot = 0; slot < n; slot++) {
      if (!w.eligible(slot, track)) continue;
      t.is(keys[slot]!.epoch, res.epoch);
      if (equal(keys[slot]!.groupKey(), gk)) recovered++;
      bytes += track.bytesPerLeaf![slot]!;
    }
    t.is(recovered, d.eligible);
    // Departed leaves never got a part (their scope excludes them) and keep the old key.
    for (const slot of res.departed.map((x) => x.slot)) t.false(equal(keys[slot]!.groupKey(), gk));
    const perLeaf = bytes / d.eligible;
    t.log(
      `n=${n} batch=${batch}: ${res.split.count} parts, ${res.encoded.length} B whole message, ${perLeaf.toFixed(0)} B per leaf (its part + header), 100 % by round ${d.r100}`,
    );
    // A leaf carries its own part, not the batch: a small fraction of the whole message.
    if (batch >= 64) t.true(20 * perLeaf < res.encoded.length, `${perLeaf} vs ${res.encoded.length}`);
  });
}

test('post-compromise recovery over gossip: own-key refreshes reach every live leaf; a tree stolen before them opens nothing after', async (t) => {
  const n = 1024;
  const suite = await loadSuite('fast');
  const tree = LeafKeyTree.create(
    { suite, keySource: derivedKeySource(suite, new Uint8Array(32).fill(9)), group: GROUP_BYTES, arity: 4 },
    n,
  );
  const checker = new SecrecyChecker(suite);
  const keys: LeafKeys[] = [];
  const welcomes = [];
  for (let slot = 0; slot < n; slot++) {
    welcomes.push(tree.welcome(slot));
    keys.push(LeafKeys.fromWelcome(tree.welcome(slot)));
  }
  checker.record({ epoch: 0, welcomes, departed: [] });
  const stolen = treeKeys(tree); // epoch 0: a data-directory copy, or a core server revoked later
  let failures = 0;
  const applyRekey = (leaf: number, item: Item): void => {
    const { header, part } = openPayload(item);
    try {
      keys[leaf] = keys[leaf]!.processPart(suite, header, part);
    } catch {
      failures++;
    }
  };
  const w = new GossipWorld({ n, seed: 11, loss: 0.05, config: { arity: 4 }, applyRekey, suite });
  w.runRounds(3);
  const batch = (ops: TreeOp[]): void => {
    const rekeyed = ops.flatMap((op) =>
      op.kind === 'rekey-leaf'
        ? [{ slot: op.slot, version: tree.welcome(op.slot).keys[0]!.version + 1, key: op.key }]
        : [],
    );
    // Each refreshed leaf derived its new own key from its TLS session: it holds it pending.
    for (const r of rekeyed) keys[r.slot] = keys[r.slot]!.withPendingOwnKey(r.key);
    const res = tree.applyBatch(ops);
    checker.record({ epoch: res.epoch, message: res.message, welcomes: [], departed: [], rekeyed });
    w.runUntilDelivered([w.rekeyWith(signedBy(suite, w, res), [])], Math.ceil(Math.log2(n)) + 30);
  };
  // A full refresh: every own key, 256 per batch (a server's per-tick bound is 512).
  for (let from = 0; from < n; from += 256) {
    const ops: TreeOp[] = [];
    for (let slot = from; slot < from + 256; slot++)
      ops.push({ kind: 'rekey-leaf', slot, key: suite.sha256(Uint8Array.of(slot & 0xff, slot >> 8, 0x77)) });
    batch(ops);
  }
  batch([{ kind: 'refresh-root' }]);
  t.is(failures, 0);
  const gk = tree.groupKey()!;
  t.true(
    keys.every((k) => k.epoch === tree.epoch && equal(k.groupKey(), gk)),
    'every leaf followed',
  );
  const derived = checker.deriveAfterCompromise(stolen);
  const root = `${tree.height}/0/${tree.rootVersion()}`;
  t.false(derived.has(root), 'the stolen tree does not open the group key after the full refresh');
  const late = [...derived.keys()].filter((id) => checker.createdEpoch(id)! >= tree.epoch - 1);
  t.deepEqual(late, []);
});
