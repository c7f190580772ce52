/**
 * Post-compromise recovery in the replicated leaf state machine: own-key refreshes through the
 * total order, the full refresh after a core server's revocation (exposed count, deadline
 * eviction), determinism and snapshots with the new state.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { LeafKeys, decodeHeader, refreshedLeafKey } from '../../keytree/index.js';
import {
  LeafStateMachine,
  decodeCommand,
  encodeCommand,
  type BatchOutput,
  type LeafCommand,
} from '../../leaf-plane/index.js';

const GROUP = new TextEncoder().encode('g');

function machine(suite: CipherSuite, maxRekeysPerBatch?: number): LeafStateMachine {
  const m = new LeafStateMachine({
    suite,
    group: GROUP,
    secret: new Uint8Array(32).fill(7),
    leaseMs: 60_000,
    checkInvariants: true,
    ...(maxRekeysPerBatch !== undefined ? { maxRekeysPerBatch } : {}),
  });
  m.setPrimary(true);
  return m;
}

const admit = (name: string, now = 0): LeafCommand => ({
  kind: 'admit',
  value: { name, serial: `s-${name}`, fingerprint: new Uint8Array(32).fill(1), now },
});
const cut = (m: LeafStateMachine, now = 0): LeafCommand => ({
  kind: 'cutBatch',
  value: { epoch: m.epoch + 1, now },
});

/** Leaves following the batches from their parts, each computing its own refreshed keys. */
class Leaves {
  readonly keys = new Map<string, LeafKeys>();
  constructor(private readonly suite: CipherSuite) {}

  apply(b: BatchOutput | undefined): void {
    if (b === undefined) return;
    const header = decodeHeader(b.headerBytes);
    for (const d of b.evicted) this.keys.delete(d.name);
    for (const [name, k] of this.keys) {
      const id = b.rekey.split.partIdFor(k.slot)!;
      this.keys.set(name, k.processPart(this.suite, header, b.rekey.split.part(id)));
    }
    for (const a of b.admitted) this.keys.set(a.name, LeafKeys.fromWelcome(a.welcome));
  }

  pending(name: string, key: Uint8Array): void {
    this.keys.set(name, this.keys.get(name)!.withPendingOwnKey(key));
  }
}

function run(ms: LeafStateMachine[], leaves: Leaves, cmd: LeafCommand): BatchOutput | undefined {
  const bytes = encodeCommand(cmd);
  let out: BatchOutput | undefined;
  for (const m of ms) {
    const b = m.apply(decodeCommand(bytes)).batch;
    out ??= b;
  }
  leaves.apply(out);
  return out;
}

function refresh(
  suite: CipherSuite,
  m: LeafStateMachine,
  leaves: Leaves,
  names: string[],
  counter: number,
): LeafCommand {
  return {
    kind: 'refreshLeafKeys',
    value: {
      refreshes: names.map((name) => {
        const admittedEpoch = m.entry(name)!.admittedEpoch;
        const exporter = suite.sha256(new TextEncoder().encode(`session of ${name}`));
        const key = refreshedLeafKey(suite, exporter, { group: GROUP, admittedEpoch, counter });
        leaves.pending(name, key);
        return { name, admittedEpoch, key };
      }),
    },
  };
}

test('a refresh replaces the leaf own key at the next cut; replicas agree; the leaf follows', async (t) => {
  const suite = await loadSuite('fast');
  const ms = [machine(suite), machine(suite)];
  const leaves = new Leaves(suite);
  for (const n of ['a', 'b', 'c', 'd', 'e']) run(ms, leaves, admit(n));
  run(ms, leaves, cut(ms[0]!));
  const before = ms[0]!.welcomeFor('c')!.keys[0]!;
  run(ms, leaves, refresh(suite, ms[0]!, leaves, ['c'], 1));
  t.is(ms[0]!.pendingChanges, 1);
  const b = run(ms, leaves, cut(ms[0]!, 10))!;
  t.deepEqual(b.rekeyed, ['c']);
  const after = ms[0]!.welcomeFor('c')!.keys[0]!;
  t.is(after.version, before.version + 1);
  t.deepEqual(ms[0]!.snapshot(), ms[1]!.snapshot());
  for (const [name, k] of leaves.keys) t.deepEqual(k.groupKey(), ms[0]!.groupKey(), name);
  // A refresh for another admission (stale admittedEpoch) or an unknown leaf changes nothing.
  run(ms, leaves, {
    kind: 'refreshLeafKeys',
    value: {
      refreshes: [
        { name: 'c', admittedEpoch: 99, key: new Uint8Array(32).fill(3) },
        { name: 'zz', admittedEpoch: 1, key: new Uint8Array(32).fill(3) },
      ],
    },
  });
  t.is(ms[0]!.pendingChanges, 0);
});

test('revokeCore: every admitted leaf exposed until refreshed; the window evicts the rest', async (t) => {
  const suite = await loadSuite('fast');
  const ms = [machine(suite), machine(suite)];
  const leaves = new Leaves(suite);
  const names = Array.from({ length: 20 }, (_, i) => `leaf-${i}`);
  for (const n of names) run(ms, leaves, admit(n));
  run(ms, leaves, cut(ms[0]!));
  // A refresh queued before the revocation may have been read by the revoked server: dropped.
  run(ms, leaves, refresh(suite, ms[0]!, leaves, ['leaf-0'], 1));
  run(ms, leaves, { kind: 'revokeCore', value: { serial: 'core-x', now: 1000, windowMs: 5000 } });
  t.is(ms[0]!.exposedLeaves, 20);
  t.is(ms[0]!.pendingChanges, 0);
  t.deepEqual(ms[0]!.fullRefresh, { deadline: 6000, epoch: 1 });
  // Ordered again by another server: no second window.
  run(ms, leaves, { kind: 'revokeCore', value: { serial: 'core-x', now: 2000, windowMs: 5000 } });
  t.deepEqual(ms[0]!.fullRefresh, { deadline: 6000, epoch: 1 });
  // A join after the revocation is not exposed (its key comes from the rotated secret).
  run(ms, leaves, admit('late', 1500));
  run(ms, leaves, refresh(suite, ms[0]!, leaves, names.slice(0, 15), 2));
  run(ms, leaves, cut(ms[0]!, 2000));
  t.is(ms[0]!.exposedLeaves, 5);
  for (const [name, k] of leaves.keys) t.deepEqual(k.groupKey(), ms[0]!.groupKey(), name);
  // The window ends: the five not refreshed are evicted as key-exposed.
  const b = run(ms, leaves, cut(ms[0]!, 6000))!;
  t.deepEqual(
    b.evicted.map((d) => [d.name, d.reason]),
    names.slice(15).map((n) => [n, 'key-exposed']),
  );
  t.is(ms[0]!.exposedLeaves, 0);
  t.is(ms[0]!.fullRefresh, undefined);
  t.is(ms[0]!.members, 16);
  t.deepEqual(ms[0]!.snapshot(), ms[1]!.snapshot());
  for (const [name, k] of leaves.keys) t.deepEqual(k.groupKey(), ms[0]!.groupKey(), name);
});

test('the full refresh ends when the last exposed leaf is refreshed, and snapshots carry it', async (t) => {
  const suite = await loadSuite('fast');
  const m = machine(suite);
  const leaves = new Leaves(suite);
  for (const n of ['a', 'b', 'c']) run([m], leaves, admit(n));
  run([m], leaves, cut(m));
  run([m], leaves, { kind: 'revokeCore', value: { serial: 'core-y', now: 10, windowMs: 60_000 } });
  run([m], leaves, refresh(suite, m, leaves, ['a'], 1));
  // Restored mid-refresh: same exposure, same queued refresh, same bytes.
  const copy = machine(suite);
  copy.restore(m.snapshot());
  t.deepEqual(copy.snapshot(), m.snapshot());
  t.is(copy.exposedLeaves, 3);
  t.is(copy.pendingChanges, 1);
  run([m, copy], leaves, refresh(suite, m, leaves, ['b', 'c'], 2));
  run([m, copy], leaves, cut(m, 20));
  t.is(m.exposedLeaves, 0);
  t.is(m.fullRefresh, undefined);
  t.deepEqual(copy.snapshot(), m.snapshot());
});

test('a cut takes at most maxRekeysPerBatch refreshes, lowest slots first; replicas agree across a restore', async (t) => {
  const suite = await loadSuite('fast');
  const m = machine(suite, 2);
  const leaves = new Leaves(suite);
  const names = ['e', 'd', 'c', 'b', 'a'];
  for (const n of names) run([m], leaves, admit(n));
  run([m], leaves, cut(m));
  run([m], leaves, refresh(suite, m, leaves, names, 1));
  const restored = machine(suite, 2);
  restored.restore(m.snapshot()); // its pending refreshes come back in name order
  const slots = (b: BatchOutput): number[] => b.rekeyed.map((n) => m.entry(n)!.slot);
  const first = run([m, restored], leaves, cut(m, 1))!;
  t.deepEqual(slots(first), [0, 1]);
  t.is(m.pendingChanges, 3);
  t.deepEqual(slots(run([m, restored], leaves, cut(m, 2))!), [2, 3]);
  t.deepEqual(slots(run([m, restored], leaves, cut(m, 3))!), [4]);
  t.is(m.pendingChanges, 0);
  t.deepEqual(restored.snapshot(), m.snapshot());
  for (const [name, k] of leaves.keys) t.deepEqual(k.groupKey(), m.groupKey(), name);
});
