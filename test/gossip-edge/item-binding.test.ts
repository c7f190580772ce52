/**
 * A rekey item is bound to its signed content (gossip-items.ts rekeyItemBound): every item the
 * relay builds from a real batch passes — moved parts (compaction) included — and any relabelling
 * of a genuine part (position, epoch, scope, another part's content) fails, without leaf keys.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import {
  LIMITS,
  RekeyPush,
  admitGossipItem,
  openRekeyItem,
  routeEpochParts,
  farAhead,
  itemLabelsAgree,
  rekeyId,
  rekeyItem,
  rekeyItemBound,
  type Item,
  type ItemAdmissionHost,
} from '../../gossip-edge/index.js';
import { encode } from '../../wire/index.js';
import {
  LeafKeyTree,
  decodeHeader,
  derivedKeySource,
  encodeHeader,
  encodePart,
  signedBytes,
  type RekeyPart,
} from '../../keytree/index.js';

test('relay-built items are bound; relabelled ones are not', async (t) => {
  const suite = await loadSuite('fast');
  const tree = LeafKeyTree.create(
    {
      suite,
      keySource: derivedKeySource(suite, new Uint8Array(32).fill(3)),
      group: new TextEncoder().encode('g'),
      arity: 4,
    },
    64,
  );
  // All but slots 0 and 63 leave: the tree is too deep and compacts, moving 63 down.
  const res = tree.applyBatch(
    Array.from({ length: 62 }, (_, i) => ({ kind: 'leave' as const, slot: i + 1 })),
  );
  const header = res.message.header;
  const hb = encodeHeader(header);
  const push = (part: RekeyPart) => ({
    header: hb,
    signer: new Uint8Array(32),
    signature: new Uint8Array(64),
    parts: [encodePart(part)],
  });
  const parts = Array.from({ length: res.split.count }, (_, id) => res.split.part(id));
  t.true(
    parts.some((p) => p.movedFrom !== undefined),
    'the batch moved a leaf',
  );
  const items = parts.map((p) => rekeyItem(push(p), p, 4));
  items.forEach((item, k) => {
    t.true(itemLabelsAgree(item));
    t.true(rekeyItemBound(suite, item, header, parts[k]!), `part ${k}`);
    const moved = parts[k]!.movedFrom;
    if (moved !== undefined) t.deepEqual([item.scopeStart, item.scopeEnd], [moved, moved + 1]);
  });

  const p0 = parts[0]!;
  const i0 = items[0]!;
  const refused = (item: Item, part: RekeyPart = p0): boolean => !rekeyItemBound(suite, item, header, part);
  t.true(refused({ ...i0, id: rekeyId(header.epoch, p0.position + 1) }), 'another position');
  t.true(
    refused({ ...i0, id: rekeyId(header.epoch + 1, p0.position), epoch: header.epoch + 1 }),
    'another epoch',
  );
  t.true(refused({ ...i0, scopeEnd: i0.scopeEnd + 1 }), 'a wider scope');
  t.true(refused({ ...i0, scopeStart: 0, scopeEnd: 0xffff_ffff }), 'the whole group');
  if (parts.length > 1) t.true(refused(i0, parts[1]!), "another part's content under these labels");
  // A part whose fields were edited to match forged labels fails its Merkle proof.
  const forged: RekeyPart = { ...p0, position: p0.position + 1 };
  t.true(refused({ ...i0, id: rekeyId(header.epoch, forged.position) }, forged), 'an edited position');
  t.false(itemLabelsAgree({ ...i0, id: rekeyId(header.epoch + 1, p0.position) }));
});

test('far ahead: more than LIMITS.maxEpochsAhead epochs past ours', (t) => {
  t.false(farAhead(10 + LIMITS.maxEpochsAhead, 10));
  t.true(farAhead(11 + LIMITS.maxEpochsAhead, 10));
});

test('routing and admission of a compaction batch: the moved part goes to the old slot and is admitted there', async (t) => {
  const suite = await loadSuite('fast');
  const tree = LeafKeyTree.create(
    {
      suite,
      keySource: derivedKeySource(suite, new Uint8Array(32).fill(4)),
      group: new TextEncoder().encode('g'),
      arity: 4,
    },
    64,
  );
  const seed = new Uint8Array(32).fill(7);
  const signerKey = suite.ed25519PublicKey(seed);
  const res = tree.applyBatch(
    Array.from({ length: 62 }, (_, i) => ({ kind: 'leave' as const, slot: i + 1 })),
  );
  const header = res.message.header;
  const signed = {
    epoch: res.epoch,
    header: encodeHeader(header),
    signer: signerKey,
    signature: suite.ed25519Sign(seed, signedBytes(header)),
    split: res.split,
  };
  // The two survivors, by their slots BEFORE the batch (their gossip ids).
  const route = routeEpochParts(signed, [0, 63], 3, { int: () => 0 }, () => true);
  const moved = Array.from({ length: res.split.count }, (_, id) => res.split.part(id)).find(
    (p) => p.movedFrom !== undefined,
  )!;
  t.is(moved.movedFrom, 63);
  const to63 = route.outbox.get(1) ?? [];
  t.true(
    to63.some((i) => i.id === rekeyId(res.epoch, moved.position)),
    'the moved part is handed to the leaf at its old slot',
  );
  t.deepEqual(route.fallback, []);
  t.is(route.routed + route.withoutTarget, res.split.count);
  t.deepEqual(
    routeEpochParts(signed, [0, 63], 3, { int: () => 0 }, () => false).fallback.length,
    route.routed,
  );

  // The leaf's admission (LeafClient's and the simulation's): every routed item passes.
  let verifies = 0;
  const host = (held: number | undefined, isSigner = true): ItemAdmissionHost => ({
    suite,
    heldEpoch: () => held,
    isSigner: () => isSigner,
    verify: (k, m, s) => suite.ed25519Verify(k, m, s),
    verifiedHeader: (push) => {
      verifies++;
      const h = decodeHeader(push.header);
      return suite.ed25519Verify(push.signer, signedBytes(h), push.signature) ? h : undefined;
    },
  });
  const item = to63.find((i) => i.id === rekeyId(res.epoch, moved.position))!;
  t.is(admitGossipItem(item, host(0)), true);
  t.is(admitGossipItem(item, host(undefined)), 'later', 're-joining: no keys yet');
  t.is(admitGossipItem(item, host(0, false)), 'foreign', 'a signer we do not know');
  t.is(admitGossipItem({ ...item, scopeStart: 0, scopeEnd: 64 }, host(0)), false, 'relabelled scope');
  const forged = encode(RekeyPush, { ...openRekeyItem(item), signature: new Uint8Array(64) }, 1 << 20);
  t.is(admitGossipItem({ ...item, payload: forged, bytes: forged.length }, host(0)), false, 'bad signature');
  t.is(admitGossipItem({ ...item, payload: new Uint8Array(3), bytes: 3 }, host(0)), false, 'garbage');
  t.true(verifies >= 3);
});
