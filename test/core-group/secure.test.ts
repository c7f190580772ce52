/**
 * Secured core traffic: every frame on the wire is sealed; a member outside the view, or holding
 * only old keys, can neither read nor inject; replays are dropped.
 */
import test from 'ava';
import { SecureKind, decodeFrame } from '../../core-group/index.js';
import type { GroupMember } from '../../core-group/index.js';
import { group } from './keyed-group.js';

const stats = (m: GroupMember) => m.secureStats!;

test('nothing on the wire is a plaintext frame; membership before the first key travels pairwise-sealed', (t) => {
  const { sim, nodes, wire } = group(3);
  sim.runUntil(3_000);
  t.true(nodes.every((x) => !x.member.blocked));
  const kinds = new Set(wire.map((w) => w.bytes[0]));
  t.deepEqual([...kinds].sort(), [SecureKind.Core, SecureKind.Pair, SecureKind.Offer].sort());
  for (const w of wire) t.throws(() => decodeFrame(w.bytes)); // never a bare stack frame
  t.true(stats(nodes[0]!.member).sealedCore > 0);
  t.true(stats(nodes[0]!.member).sealedPair > 0);
});

test('a departed member holding the old key cannot read the new view traffic nor inject into it', (t) => {
  const { sim, nodes, wire } = group(3);
  sim.runUntil(3_000);
  const old = nodes[2]!.member;
  const oldKey = old.coreKey!.lineage;
  sim.crash(2); // its GroupMember object keeps every key it held: the adversary's memory
  sim.runUntil(8_000);
  const [a, b] = [nodes[0]!.member, nodes[1]!.member];
  t.false(a.blocked);
  t.false(b.blocked);
  t.notDeepEqual(a.coreKey!.lineage, oldKey);
  // Read: every frame the survivors exchange after their rekey is opaque to the old member.
  const mark = wire.length;
  sim.runUntil(9_000);
  const late = wire.slice(mark).filter((w) => w.from !== 2 && w.to !== 2);
  t.true(late.length > 0);
  const before = stats(old).opened;
  for (const w of late) old.receive(w.bytes);
  t.is(stats(old).opened, before);
  // Inject: frames the old member seals now (under the old core key, or pairwise with a peer that
  // has moved on) change nothing at the survivors.
  const aView = a.view.id.epoch;
  const delivered = nodes[0]!.delivered.length;
  const forgedFrom: Uint8Array[] = [];
  const host = { send: (_to: string, bytes: Uint8Array) => void forgedFrom.push(bytes) };
  // Drive the old member's own stack: its heartbeats and status frames are sealed by its link.
  (old as unknown as { host: typeof host }).host.send = host.send;
  for (let i = 0; i < 20; i++) old.tick();
  // Under the old core key: refused outright. (Pairwise-sealed frames from it are authentic — it
  // is an admitted server that may merge back — but the stack takes nothing from a non-member.)
  const underOldKey = forgedFrom.filter((f) => f[0] === SecureKind.Core);
  t.true(underOldKey.length > 0);
  const openedBefore = stats(a).opened;
  const unknown = stats(a).unknownKey;
  for (const f of underOldKey) a.receive(f);
  t.is(stats(a).opened, openedBefore, 'a frame sealed under the old core key was accepted');
  t.is(stats(a).unknownKey, unknown + underOldKey.length);
  t.is(a.view.id.epoch, aView);
  t.is(nodes[0]!.delivered.length, delivered);
});

test('a replayed frame is dropped and counted', (t) => {
  const { sim, nodes, wire } = group(2);
  sim.runUntil(3_000);
  const a = nodes[0]!.member;
  const toA = wire.filter((w) => w.to === 0 && w.bytes[0] === SecureKind.Core).slice(-20);
  sim.runUntil(3_100); // every recorded frame has arrived once
  t.true(toA.length > 0);
  const replays = stats(a).replays;
  const opened = stats(a).opened;
  for (const w of toA) a.receive(w.bytes);
  t.is(stats(a).opened, opened);
  t.is(stats(a).replays, replays + toA.length);
});

test('a tampered frame (header or body) is dropped as forged', (t) => {
  const { sim, nodes, wire } = group(2);
  sim.runUntil(3_000);
  const a = nodes[0]!.member;
  const w = wire.filter((x) => x.to === 0 && x.bytes[0] === SecureKind.Core).at(-1)!;
  const forged = stats(a).forged;
  // A byte of the sender's name in the header, and the last byte of the tag.
  for (const i of [18, w.bytes.length - 1]) {
    const bad = w.bytes.slice();
    bad[i]! ^= 1;
    a.receive(bad);
  }
  t.is(stats(a).forged, forged + 2);
});
