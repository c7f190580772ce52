/**
 * Issue 17, finding 3: a malicious leaf (valid certificate, current group key, its own UDP socket
 * speaking the gossip protocol) against real core servers and real LeafClients over 127.0.0.1.
 *
 * (a) genuine signed parts relabelled with the ids (part positions) and scopes of the next
 *     epoch: parked there, they made the real parts look like duplicates — one datagram per batch
 *     defeated the gossip tier. Now refused (not stored, not relayed), and the victim still takes
 *     the next epoch by gossip with no catch-up and no re-join.
 * (a2) a leaf one epoch behind is sent another path's genuine part of the next epoch under its
 *     own part's labels: it used to take it, fail to apply it and re-join; now refused.
 * (b) ids claimed 2, 50 and 100000 epochs ahead: refused, not stored, not relayed.
 * (c) an invalid item (bad signature) from a peer in the victim's view: the peer is dropped.
 * (d) datagrams claiming a live peer's id from the attacker's address: the victim's traffic to
 *     that peer never goes to the attacker (samples hijacked: 0).
 * (e) malformed and oversize datagrams: refused, counted, the victim keeps working.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { GOSSIP_FRAME_TYPE, WHOLE_GROUP_END, rekeyId } from '../../gossip-edge/index.js';
import type { GossipLink } from '../../leaf-sdk/index.js';
import { decodeHeader, decodePart } from '../../keytree/index.js';
import { peekFrameHeader } from '../../wire/index.js';
import { Cluster, until, type Leaf } from '../server/cluster.js';
import { Insider, deafen, dropped, nodeOf, relabelled, viewsOf } from './gossip-insider-kit.js';

const cluster = new Cluster();
let suite: CipherSuite;
let mallory: Insider;
let victim: Leaf;
let peer: Leaf;
let joins = 0;
/** Leaves that left the group (no longer expected to follow its epochs). */
const gone = new Set<string>();

const linkOf = (l: Leaf): GossipLink => l.client.gossip!;
const slotOf = (l: Leaf): number => linkOf(l).self!;
const endpointOf = (l: Leaf): { host: string; port: number } => linkOf(l).endpoint;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** No new epoch for this long: no own-key refresh is on its way (servers order them within a batch tick or two). */
const QUIET_MS = 1000;

/**
 * Everyone at one epoch, and Mallory holding that epoch's genuine push and key — and the group
 * quiet: a new TLS session's own-key refresh cuts an epoch of its own shortly after a welcome, and
 * a genuine part of it would carry the very ids the attacks below squat (the probes would then
 * find the real part stored and blame the attack).
 */
async function settled(): Promise<number> {
  const leaves = gossipLeaves();
  for (;;) {
    await until(
      'every leaf at one epoch, Mallory with its push',
      () => {
        const e = mallory.client.epoch;
        return (
          leaves.every((l) => l.client.epoch === e && linkOf(l).started) &&
          mallory.pushes.length > 0 &&
          decodeHeader(mallory.newestPush().header).epoch === e
        );
      },
      20_000,
    );
    const e = mallory.client.epoch;
    await sleep(QUIET_MS);
    if (mallory.client.epoch === e) return mallory.holdKey();
  }
}

/** The leaves in the group with a gossip link. */
function gossipLeaves(): Leaf[] {
  return cluster.leaves.filter((l) => l.client.gossip !== undefined && !gone.has(l.name));
}

/** A rekey: one more leaf joins (on Mallory's server: Mallory is sent its part over TLS). */
async function rekey(): Promise<void> {
  await cluster.leaf(`joiner-${joins++}`, 0);
}

test.before(async () => {
  suite = await loadSuite();
  await cluster.init();
  await cluster.startServers(3);
  await cluster.untilOnePrimaryView();
  mallory = await Insider.join(cluster, 'mallory', suite, 0);
  victim = await cluster.leaf('victim', 0);
  peer = await cluster.leaf('peer', 0);
  await rekey();
  await settled();
  await until(
    'the victim reaches its peer by a seeded address',
    () => linkOf(victim).book.peek(slotOf(peer)) !== undefined,
  );
});

test.after.always(async () => {
  mallory?.close();
  await cluster.stop();
});

test.serial(
  '(a) relabelled genuine parts squatting the next epoch: refused; the real parts still apply by gossip',
  async (t) => {
    const e = await settled();
    const push = mallory.newestPush();
    const v = victim.client.stats;
    const before = { gossip: v.gossipRekeys, tls: v.tlsRekeys, rejoins: v.rejoins, catchUps: v.catchUps };
    const slot = slotOf(victim);
    const squatted: number[] = [];
    for (let p = 0; p < 16; p++) {
      const id = rekeyId(e + 1, p);
      squatted.push(id);
      const items = [
        // The header's own epoch, another epoch's id, a scope over everyone.
        relabelled(push, { id, epoch: e, scopeStart: 0, scopeEnd: WHOLE_GROUP_END }),
        // Labels that agree with each other (and name the victim's slot), content of another epoch.
        relabelled(push, { id, epoch: e + 1, scopeStart: slot, scopeEnd: slot + 1 }),
      ];
      for (const item of items) await mallory.send(endpointOf(victim), mallory.push([item]));
    }
    await sleep(300);
    const stored = squatted.filter((id) => nodeOf(linkOf(victim))!.seen(id));
    const relayed = squatted.filter((id) => nodeOf(linkOf(peer))!.seen(id));
    t.deepEqual(stored, [], 'the victim stored no relabelled part');
    t.deepEqual(relayed, [], 'the victim relayed no relabelled part');

    await rekey();
    await until('the victim has the next epoch', () => (victim.client.epoch ?? 0) > e, 15_000);
    t.is(v.gossipRekeys, before.gossip + 1, 'the next epoch came by gossip');
    t.is(v.tlsRekeys, before.tls, 'no rekey over TLS');
    t.is(v.catchUps, before.catchUps, 'no catch-up');
    t.is(v.rejoins, before.rejoins, 'no re-join');
    t.true(dropped(linkOf(victim), 'mislabelled') + dropped(linkOf(victim), 'rejected') >= 32);
  },
);

test.serial(
  "(a2) a leaf one epoch behind, sent another path's part of the next epoch under its own labels: no re-join",
  async (t) => {
    const e = await settled();
    // A leaf next to Mallory (slots 0..3 share a subtree) leaves: her part of the next epoch is
    // then her own leaf's, and the victim's (slot 1) another one.
    const leaving = cluster.leaves.find((l) => l.name === 'joiner-0')!;
    gone.add(leaving.name);
    const leaves = gossipLeaves();
    // Every gossip leaf misses the next epoch's datagrams (only Mallory's reach them) …
    const deaf = leaves.map((l) => deafen(linkOf(l), [mallory.address]));
    try {
      await leaving.client.close();
      // … while Mallory holds that epoch's genuine push (her own path's part) over TLS.
      await until(
        'Mallory has the next epoch',
        () => decodeHeader(mallory.newestPush().header).epoch === e + 1,
      );
      mallory.holdKey();
      const push = mallory.newestPush();
      const header = decodeHeader(push.header);
      const own = decodePart(push.parts[0]!);
      const width = 4 ** own.level;
      // The victim: a leaf that her part does not cover (its own part is another one).
      const target = leaves.find((l) => Math.floor(slotOf(l) / width) !== own.index && l.client.epoch === e);
      if (target === undefined) return t.fail('every leaf is under Mallory part');
      const v = target.client.stats;
      const rejoins = v.rejoins;
      const link = linkOf(target);
      const slot = slotOf(target);
      const ids: number[] = [];
      // Under every position of that epoch, scoped to the victim: one of them is the victim's part.
      for (let p = 0; p < header.partCount; p++) {
        const id = rekeyId(e + 1, p);
        ids.push(id);
        const item = relabelled(push, { id, epoch: e + 1, scopeStart: slot, scopeEnd: slot + 1 });
        await mallory.send(link.endpoint, mallory.push([item], { epoch: e }));
      }
      await sleep(300);
      t.is(v.rejoins, rejoins, 'no re-join');
      t.deepEqual(
        ids.filter((id) => nodeOf(link)!.seen(id)),
        [],
        'stored by the victim',
      );
      t.is(target.client.epoch, e, 'still behind: nothing it took moved it');
    } finally {
      for (const hear of deaf) hear();
    }
    await until('every leaf catches up', () => leaves.every((l) => l.client.epoch === e + 1), 15_000);
  },
);

test.serial('(b) ids 2, 50 and 100000 epochs ahead: refused, not stored, not relayed', async (t) => {
  const e = await settled();
  const push = mallory.newestPush();
  const slot = slotOf(victim);
  const ahead = [2, 50, 100_000].map((k) => rekeyId(e + k, 0));
  const farBefore = dropped(linkOf(victim), 'far-future');
  for (const k of [2, 50, 100_000]) {
    const id = rekeyId(e + k, 0);
    for (const epoch of [e, e + k])
      await mallory.send(
        endpointOf(victim),
        mallory.push([relabelled(push, { id, epoch, scopeStart: slot, scopeEnd: slot + 1 })]),
      );
  }
  await sleep(300);
  t.deepEqual(
    ahead.filter((id) => nodeOf(linkOf(victim))!.seen(id)),
    [],
    'stored by the victim',
  );
  t.deepEqual(
    ahead.filter((id) => nodeOf(linkOf(peer))!.seen(id)),
    [],
    'relayed to its peer',
  );
  t.true(dropped(linkOf(victim), 'far-future') >= farBefore + 2, 'counted as far ahead');
});

test.serial('(c) a peer that sends an invalid item is dropped from the view', async (t) => {
  const e = await settled();
  const push = mallory.newestPush();
  const link = linkOf(victim);
  await mallory.send(endpointOf(victim), mallory.datagram({ kind: 'neighbor', high: true }));
  await until('Mallory is in the victim view', () => viewsOf(link).includes(mallory.slot));
  const signature = push.signature.slice();
  signature[0]! ^= 1;
  const slot = slotOf(victim);
  const forged = relabelled(
    { ...push, signature },
    { id: rekeyId(e + 1, 0), epoch: e + 1, scopeStart: slot, scopeEnd: slot + 1 },
  );
  await mallory.send(endpointOf(victim), mallory.push([forged]));
  await sleep(300);
  t.false(viewsOf(link).includes(mallory.slot), 'Mallory is out of every view');
  t.true((link.counters as unknown as Record<string, number>)['peersDistrusted']! >= 1);
});

test.serial('(d) claiming a live peer from the attacker address: no sample hijacked', async (t) => {
  const e = await settled();
  const link = linkOf(victim);
  const target = slotOf(peer);
  const genuine = link.book.peek(target);
  t.not(genuine, undefined);
  const seen = mallory.received.length;
  // A full insider: it also answers every address challenge as the peer it claims to be.
  mallory.answerAs = target;
  let hijacked = 0;
  const samples = 140;
  for (let k = 0; k < samples; k++) {
    await mallory.send(
      endpointOf(victim),
      mallory.datagram({ kind: 'digest', reply: false, probe: true, epoch: e, ids: [] }, { sender: target }),
    );
    await sleep(20);
    if (link.book.peek(target) === mallory.address) hijacked++;
  }
  const envelopes = mallory.received
    .slice(seen)
    .filter((d) => peekFrameHeader(d.data, 1 << 16).type === GOSSIP_FRAME_TYPE).length;
  t.log(
    `samples hijacked: ${hijacked} of ${samples}; gossip envelopes the victim sent Mallory: ${envelopes}; challenges Mallory answered: ${mallory.probesAnswered}`,
  );
  t.is(hijacked, 0);
  t.is(envelopes, 0, 'the victim sent the peer nothing at the attacker address');
  t.is(link.book.peek(target), genuine);
  mallory.answerAs = undefined;
});

test.serial('(e) malformed and oversize datagrams: refused, counted, the victim keeps working', async (t) => {
  const e = await settled();
  const link = linkOf(victim);
  const before = link.stats.malformed;
  const valid = mallory.datagram({ kind: 'digest', reply: false, probe: false, epoch: e, ids: [] });
  const junk: Uint8Array[] = [
    new Uint8Array(0),
    Uint8Array.of(1),
    suite.randomBytes(64),
    suite.randomBytes(4000),
    valid.subarray(0, valid.length - 3),
    Uint8Array.from([...valid, 0]),
  ];
  // Frame headers of each gossip-tier type over garbage bodies.
  for (const type of [0x0601, 0x0602, 0x0603, 0x0604]) {
    const f = suite.randomBytes(200);
    f.set(valid.subarray(0, 10));
    f[4] = type >> 8;
    f[5] = type & 0xff;
    junk.push(f);
  }
  for (const d of junk) await mallory.send(endpointOf(victim), d);
  await mallory.send(endpointOf(victim), suite.randomBytes(9000)).catch(() => undefined);
  await until('the junk is counted', () => link.stats.malformed >= before + junk.length - 1, 5000);
  const gossipBefore = victim.client.stats.gossipRekeys;
  await rekey();
  await until(
    'the victim still takes rekeys by gossip',
    () => victim.client.stats.gossipRekeys > gossipBefore,
    15_000,
  );
  t.deepEqual(victim.errors, []);
  t.deepEqual(victim.evicted, []);
});
