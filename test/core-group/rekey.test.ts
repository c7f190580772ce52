/** The core key through the real stack: rekey on every view, traffic held until keyed, refresh. */
import test from 'ava';
import { MAX_APP_PAYLOAD_BYTES } from '../../core-group/index.js';
import { membersOf } from '../../keytree/index.js';
import type { Node } from './keyed-group.js';
import { group } from './keyed-group.js';

const keyed = (nodes: Node[], size: number): boolean =>
  nodes.every(
    (x) =>
      x.member.view.members.length === size &&
      !x.member.blocked &&
      x.member.coreKey !== undefined &&
      membersOf(x.member.coreKey.tree).length === size,
  );

test('a group forms, every member holds the same core key, and unblock comes only after it', (t) => {
  const { sim, nodes } = group(4);
  sim.runUntil(3_000);
  t.true(keyed(nodes, 4));
  const k0 = nodes[0]!.member.coreKey!;
  for (const x of nodes) {
    const k = x.member.coreKey!;
    t.deepEqual(k.groupKey, k0.groupKey);
    t.deepEqual(k.lineage, k0.lineage);
    const last = x.keys.at(-1)!;
    // The upcall hands up the committed core key itself.
    t.deepEqual(last.coreKey, k.groupKey);
    t.is(last.epoch, nodes[0]!.keys.at(-1)!.epoch);
    // Every `unblock` follows a `key` of the same view (keys on: view → key → unblock).
    x.events.forEach((e, i) => {
      if (e === 'unblock') t.is(x.events[i - 1], 'key', `${x.member.self}: ${x.events.join(',')}`);
    });
  }
});

test('application multicasts offered before the key are held, then delivered everywhere', (t) => {
  const { sim, nodes } = group(3);
  sim.runUntil(3_000);
  t.true(keyed(nodes, 3));
  const before = nodes[0]!.keys.length;
  // Crash one member: the survivors install a new view, rekey, and only then send.
  sim.crash(2);
  sim.runUntil(3_005);
  t.true(nodes[0]!.member.multicast('ordered', Uint8Array.of(42)));
  sim.runUntil(8_000);
  t.true(keyed(nodes.slice(0, 2), 2));
  t.true(nodes[0]!.keys.length > before);
  for (const x of nodes.slice(0, 2))
    t.true(x.delivered.some((d) => d.payload.length === 1 && d.payload[0] === 42));
  // The departed member's key is not the survivors' key.
  t.notDeepEqual(nodes[0]!.member.coreKey!.groupKey, nodes[2]!.member.coreKey!.groupKey);
});

test('periodic refresh replaces the key inside a view, with increasing epochs', (t) => {
  const { sim, nodes } = group(3, 400);
  sim.runUntil(4_000);
  t.true(keyed(nodes, 3));
  const refreshes = nodes[0]!.keys.filter((k) => k.refresh);
  t.true(refreshes.length >= 3, `refreshes ${refreshes.length}`);
  for (const x of nodes) {
    const epochs = x.keys.map((k) => k.epoch);
    t.deepEqual(
      epochs,
      [...epochs].sort((a, b) => a - b),
    );
    t.is(new Set(epochs).size, epochs.length);
  }
});

test('keys on: the application payload cap is one byte smaller', (t) => {
  const { sim, nodes } = group(1);
  sim.runUntil(500);
  t.throws(() => nodes[0]!.member.multicast('fifo', new Uint8Array(MAX_APP_PAYLOAD_BYTES + 1)), {
    instanceOf: RangeError,
  });
  t.true(nodes[0]!.member.multicast('fifo', new Uint8Array(MAX_APP_PAYLOAD_BYTES)));
});
