/**
 * The replicated leaf state machine: determinism across replicas, leaves that follow every
 * batch from its parts, leases, revocation, primary-only mutation, snapshot/restore.
 */
import test from 'ava';
import fc from 'fast-check';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { DecodeError } from '../../wire/index.js';
import { LeafKeys, decodeHeader, signedBytes } from '../../keytree/index.js';
import {
  LeafStateMachine,
  NotPrimaryError,
  decodeCommand,
  encodeCommand,
  leafTreeSecret,
  type BatchOutput,
  type LeafCommand,
} from '../../leaf-plane/index.js';

const GROUP = new TextEncoder().encode('g');
const SECRET = new Uint8Array(32).fill(7);

function machine(
  suite: CipherSuite,
  opts: { leaseMs?: number; secret?: Uint8Array; maxJoinsPerBatch?: number } = {},
): LeafStateMachine {
  const m = new LeafStateMachine({
    suite,
    group: GROUP,
    secret: opts.secret ?? SECRET,
    leaseMs: opts.leaseMs ?? 10_000,
    checkInvariants: true,
    ...(opts.maxJoinsPerBatch !== undefined ? { maxJoinsPerBatch: opts.maxJoinsPerBatch } : {}),
  });
  m.setPrimary(true);
  return m;
}

const admit = (name: string, now = 0, serial = `s-${name}`): LeafCommand => ({
  kind: 'admit',
  value: { name, serial, fingerprint: new Uint8Array(32).fill(name.length), now },
});
const cut = (m: LeafStateMachine, now = 0): LeafCommand => ({
  kind: 'cutBatch',
  value: { epoch: m.epoch + 1, now },
});
const leave = (name: string): LeafCommand => ({ kind: 'leave', value: { name } });

/** Leaves that follow the batches through their parts only, like real members do. */
class Followers {
  readonly keys = new Map<string, LeafKeys>();

  constructor(private readonly suite: CipherSuite) {}

  apply(m: LeafStateMachine, b: BatchOutput): void {
    const header = decodeHeader(b.headerBytes);
    for (const d of b.evicted) this.keys.delete(d.name);
    for (const [name, k] of this.keys) {
      const id = b.rekey.split.partIdFor(k.slot)!;
      this.keys.set(name, k.processPart(this.suite, header, b.rekey.split.part(id)));
    }
    for (const a of b.admitted) this.keys.set(a.name, LeafKeys.fromWelcome(a.welcome));
    const gk = m.groupKey();
    for (const [name, k] of this.keys) {
      if (!Buffer.from(k.groupKey()).equals(Buffer.from(gk!))) throw new Error(`${name} lost the group key`);
      if (m.entry(name)?.slot !== k.slot) throw new Error(`${name}'s slot disagrees with the registry`);
    }
  }
}

test('admissions become one epoch; welcomes and parts give every leaf the group key', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite);
  const f = new Followers(suite);
  for (let i = 0; i < 10; i++) m.apply(admit(`leaf-${i}`));
  t.is(m.epoch, 0);
  t.is(m.pendingChanges, 10);
  const { batch } = m.apply(cut(m));
  t.truthy(batch);
  t.is(batch!.epoch, 1);
  t.is(batch!.admitted.length, 10);
  t.deepEqual(new Set(batch!.admitted.map((a) => a.memberId)).size, 10);
  f.apply(m, batch!);
  // A signature over toSign is what leaves verify.
  const seed = new Uint8Array(32).fill(1);
  t.true(
    suite.ed25519Verify(
      suite.ed25519PublicKey(seed),
      signedBytes(decodeHeader(batch!.headerBytes)),
      suite.ed25519Sign(seed, batch!.toSign),
    ),
  );
  // Leaves and joins in one batch.
  m.apply(leave('leaf-3'));
  m.apply(admit('leaf-10'));
  const b2 = m.apply(cut(m)).batch!;
  t.deepEqual(
    b2.evicted.map((d) => [d.name, d.reason]),
    [['leaf-3', 'left']],
  );
  f.apply(m, b2);
  t.is(m.members, 10);
  // An empty cut or a duplicate cut changes nothing.
  t.is(m.apply(cut(m)).batch, undefined);
  m.apply(admit('leaf-11'));
  t.is(m.apply({ kind: 'cutBatch', value: { epoch: m.epoch, now: 0 } }).batch, undefined);
  t.is(m.epoch, 2);
});

test('replicas fed the same random commands hold byte-identical state; followers keep the key', async (t) => {
  const suite = await loadSuite();
  const cmd = fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('admit' as const), n: fc.nat(40) }), weight: 5 },
    { arbitrary: fc.record({ k: fc.constant('leave' as const), n: fc.nat(40) }), weight: 3 },
    {
      arbitrary: fc.record({ k: fc.constant('revoke' as const), n: fc.nat(40), imm: fc.boolean() }),
      weight: 1,
    },
    { arbitrary: fc.record({ k: fc.constant('renew' as const), n: fc.nat(40) }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('cut' as const), dt: fc.nat(4000) }), weight: 3 },
  );
  fc.assert(
    fc.property(fc.array(cmd, { minLength: 1, maxLength: 60 }), (script) => {
      const a = machine(suite, { leaseMs: 5000 });
      const b = machine(suite, { leaseMs: 5000 });
      const f = new Followers(suite);
      let now = 0;
      for (const s of script) {
        let c: LeafCommand;
        switch (s.k) {
          case 'admit':
            c = admit(`n${s.n}`, now, `s${s.n}-${now}`);
            break;
          case 'leave':
            c = leave(`n${s.n}`);
            break;
          case 'revoke':
            c = { kind: 'revoke', value: { target: { kind: 'name', value: `n${s.n}` }, immediate: s.imm } };
            break;
          case 'renew':
            c = { kind: 'renewLeases', value: { renewals: [{ name: `n${s.n}`, until: now + 5000 }] } };
            break;
          case 'cut':
            now += s.dt;
            c = cut(a, now);
            break;
        }
        // Replication ships the encoded command.
        const ra = a.apply(c);
        const rb = b.apply(decodeCommand(encodeCommand(c)));
        t.is(ra.batch?.epoch, rb.batch?.epoch);
        if (ra.batch !== undefined) {
          t.deepEqual(ra.batch.rekey.encoded, rb.batch!.rekey.encoded);
          f.apply(a, ra.batch);
        }
      }
      t.deepEqual(a.snapshot(), b.snapshot());
      a.checkInvariants();
    }),
    { numRuns: 40 },
  );
});

test('leases: a silent leaf is evicted at the cut after expiry; renewals keep it', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite, { leaseMs: 1000 });
  m.apply(admit('a', 0));
  m.apply(admit('b', 0));
  m.apply(cut(m, 10));
  m.apply({ kind: 'renewLeases', value: { renewals: [{ name: 'a', until: 2500 }] } });
  t.is(m.apply(cut(m, 900)).batch, undefined);
  const b = m.apply(cut(m, 1500)).batch!;
  t.deepEqual(
    b.evicted.map((d) => [d.name, d.reason]),
    [['b', 'lease-expired']],
  );
  t.is(m.entry('b'), undefined);
  m.apply({ kind: 'tick', value: { now: 2600 } }); // expiry queued by a tick, applied at the next cut
  t.is(m.entry('a'), undefined);
  t.deepEqual(
    m.apply(cut(m, 2600)).batch!.evicted.map((d) => d.reason),
    ['lease-expired'],
  );
  t.is(m.members, 0);
});

test('revocation: immediate cut, refused re-admission, by serial or by name', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite);
  m.apply(admit('a', 0, 'aa'));
  m.apply(admit('b', 0, 'bb'));
  m.apply(cut(m));
  const r = m.apply({ kind: 'revoke', value: { target: { kind: 'serial', value: 'aa' }, immediate: true } });
  t.is(r.batch?.epoch, 2);
  t.deepEqual(
    r.batch!.evicted.map((d) => [d.name, d.reason]),
    [['a', 'revoked']],
  );
  t.true(m.isRevoked('aa'));
  t.deepEqual(m.apply(admit('a', 0, 'aa')).refused, { name: 'a', reason: 'revoked' });
  t.is(m.apply(admit('a', 0, 'aa2')).refused, undefined); // a new certificate is fine
  const byName = m.apply({
    kind: 'revoke',
    value: { target: { kind: 'name', value: 'b' }, immediate: false },
  });
  t.is(byName.batch, undefined);
  t.true(m.isRevoked('bb'));
  const b = m.apply(cut(m)).batch!;
  t.deepEqual(
    b.evicted.map((d) => d.name),
    ['b'],
  );
  t.deepEqual(
    b.admitted.map((a) => a.name),
    ['a'],
  );
});

test('an immediate revoke of a leaf already leaving in this batch (its lease lapsed) still cuts at once, as a revocation', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite, { leaseMs: 1000 });
  m.apply(admit('a', 0, 'aa'));
  m.apply(admit('b', 0, 'bb'));
  m.apply(cut(m, 10));
  m.apply({ kind: 'renewLeases', value: { renewals: [{ name: 'b', until: 60_000 }] } });
  m.apply({ kind: 'tick', value: { now: 1500 } }); // a's lease lapsed: it leaves at the next cut
  t.is(m.entry('a'), undefined);
  const r = m.apply({ kind: 'revoke', value: { target: { kind: 'serial', value: 'aa' }, immediate: true } });
  t.is(r.batch?.epoch, 2, 'the revocation takes the key at once, not one batch interval later');
  t.deepEqual(
    r.batch!.evicted.map((d) => [d.name, d.reason]),
    [['a', 'revoked']],
  );
  t.true(m.isRevoked('aa'));

  // A new session under the same certificate replaced b's admission earlier in the commit.
  m.apply(admit('b', 1600, 'bb'));
  const rb = m.apply({ kind: 'revoke', value: { target: { kind: 'serial', value: 'bb' }, immediate: true } });
  t.deepEqual(
    rb.batch!.evicted.map((d) => [d.name, d.reason]),
    [['b', 'revoked']],
  );
  t.deepEqual(rb.batch!.admitted, [], 'the replacing admission is revoked too');
  t.is(m.entry('b'), undefined);
});

test('batches name the certificate serial of every admission and departure, also across a restore', async (t) => {
  const suite = await loadSuite();
  const a = machine(suite);
  a.apply(admit('a', 0, 'aa'));
  a.apply(admit('b', 0, 'bb'));
  const first = a.apply(cut(a)).batch!;
  t.deepEqual(
    first.admitted.map((x) => [x.name, x.serial]),
    [
      ['a', 'aa'],
      ['b', 'bb'],
    ],
  );
  a.apply(leave('a')); // pending until the next cut: the serial travels in the snapshot
  const b = machine(suite);
  b.restore(a.snapshot());
  const next = b.apply(cut(b)).batch!;
  t.deepEqual(
    next.evicted.map((d) => [d.name, d.serial, d.reason]),
    [['a', 'aa', 'left']],
  );
  // A version-2 snapshot (no departure serials) still restores; with no pending departure its
  // bytes are the version-3 ones but for the version byte.
  const c = machine(suite);
  const v2 = b.snapshot();
  v2[0] = 2;
  c.restore(v2);
  t.is(c.epoch, b.epoch);
});

test('a revoke ordered by every server of a view: the first evicts and cuts, the others change nothing', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite);
  m.apply(admit('a', 0, 'aa'));
  m.apply(admit('b', 0, 'bb'));
  m.apply(cut(m));
  t.true(m.hasSerial('aa') && m.hasSerial('bb'));
  t.false(m.hasSerial('cc'));
  const revoke: LeafCommand = {
    kind: 'revoke',
    value: { target: { kind: 'serial', value: 'aa' }, immediate: true },
  };
  t.is(m.apply(revoke).batch?.epoch, 2);
  t.false(m.hasSerial('aa'));
  const before = m.snapshot();
  for (let i = 0; i < 2; i++) t.deepEqual(m.apply(revoke), {});
  t.deepEqual(m.snapshot(), before, 'duplicates leave the replica as it was');
  t.is(m.epoch, 2);
});

test('re-admission of a present name replaces the old admission in one batch', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite);
  m.apply(admit('a'));
  m.apply(cut(m));
  const first = m.entry('a')!.memberId;
  m.apply(admit('a'));
  const b = m.apply(cut(m)).batch!;
  t.deepEqual(
    b.evicted.map((d) => [d.name, d.reason]),
    [['a', 'replaced']],
  );
  t.is(b.admitted.length, 1);
  t.not(m.entry('a')!.memberId, first);
  t.is(m.members, 1);
});

test('a non-primary replica refuses mutations and keeps serving keys read-only', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite);
  m.apply(admit('a'));
  m.apply(cut(m));
  const key = m.groupKey();
  m.setPrimary(false);
  t.throws(() => m.apply(admit('b')), { instanceOf: NotPrimaryError });
  t.throws(() => m.apply(cut(m)), { instanceOf: NotPrimaryError });
  t.deepEqual(m.groupKey(), key);
  t.truthy(m.welcomeFor('a'));
  t.is(m.epoch, 1);
});

test('snapshot/restore mid-batch continues identically; garbage is refused and changes nothing', async (t) => {
  const suite = await loadSuite();
  const a = machine(suite);
  for (let i = 0; i < 20; i++) a.apply(admit(`x${i}`));
  a.apply(cut(a));
  a.apply(leave('x4'));
  a.apply(admit('y'));
  a.apply({ kind: 'revoke', value: { target: { kind: 'name', value: 'x9' }, immediate: false } });
  const snap = a.snapshot();
  const b = machine(suite);
  b.restore(snap);
  t.deepEqual(b.snapshot(), snap);
  const ba = a.apply(cut(a)).batch!;
  const bb = b.apply(cut(b)).batch!;
  t.deepEqual(ba.rekey.encoded, bb.rekey.encoded);
  t.deepEqual(a.snapshot(), b.snapshot());

  const c = machine(suite);
  c.apply(admit('keep'));
  c.apply(cut(c));
  const before = c.snapshot();
  t.throws(() => c.restore(snap.subarray(0, snap.length - 5)), { instanceOf: DecodeError });
  t.throws(() => c.restore(Uint8Array.of(9, 1, 2)), { instanceOf: DecodeError });
  for (let i = 0; i < 200; i++) {
    const bad = snap.slice();
    bad[(i * 7919) % bad.length]! ^= 1 << (i % 8);
    try {
      c.restore(bad);
      c.restore(before); // a flip that still decodes consistently: put the state back
    } catch (e) {
      t.true(e instanceof DecodeError || /invariant/.test((e as Error).message), String(e));
    }
  }
  t.deepEqual(c.snapshot(), before);
});

test('key secret rotation is ordered: replicas agree before and after, and keys change', async (t) => {
  const suite = await loadSuite();
  const a = machine(suite);
  const b = machine(suite);
  const secret2 = leafTreeSecret(suite, new Uint8Array(32).fill(3), 1);
  const script: LeafCommand[] = [
    admit('p'),
    admit('q'),
    { kind: 'cutBatch', value: { epoch: 1, now: 0 } },
    { kind: 'setKeySecret', value: { generation: 1, secret: secret2 } },
    admit('r'),
    { kind: 'cutBatch', value: { epoch: 2, now: 0 } },
  ];
  for (const c of script) {
    a.apply(c);
    b.apply(c);
  }
  t.deepEqual(a.groupKey(), b.groupKey());
  t.is(a.secretGeneration, 1);
  // Same ops under the old secret give a different key: the secret really feeds the tree.
  const c = machine(suite);
  for (const cmd of script.filter((x) => x.kind !== 'setKeySecret')) c.apply(cmd);
  t.notDeepEqual(c.groupKey(), a.groupKey());
  // A late, older rotation is ignored.
  a.apply({ kind: 'setKeySecret', value: { generation: 1, secret: SECRET } });
  t.deepEqual(a.snapshot(), b.snapshot());
});

test('compaction moves: the registry follows every moved leaf, and moved leaves keep the key', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite);
  const f = new Followers(suite);
  for (let i = 0; i < 40; i++) m.apply(admit(`c${i}`));
  f.apply(m, m.apply(cut(m)).batch!);
  const heightBefore = m.parts().tree.height;
  for (let i = 0; i < 36; i++) m.apply(leave(`c${i}`));
  const b = m.apply(cut(m)).batch!;
  t.true(b.rekey.moves.length > 0, 'the batch compacted the tree');
  t.true(m.parts().tree.height < heightBefore);
  f.apply(m, b); // throws if a moved leaf's registry slot or key disagrees
  for (const mv of b.rekey.moves) t.truthy(m.nameAt(mv.to));
  const snap = m.snapshot();
  const r = machine(suite);
  r.restore(snap);
  t.deepEqual(r.snapshot(), snap);
});

test('a cut takes at most maxJoinsPerBatch admissions, in order; departures are never deferred', async (t) => {
  const suite = await loadSuite();
  const m = machine(suite, { maxJoinsPerBatch: 3 });
  const f = new Followers(suite);
  m.apply(admit('first'));
  f.apply(m, m.apply(cut(m)).batch!);
  for (let i = 0; i < 7; i++) m.apply(admit(`q${i}`));
  m.apply(leave('first'));
  const b1 = m.apply(cut(m)).batch!;
  t.deepEqual(
    b1.admitted.map((a) => a.name),
    ['q0', 'q1', 'q2'],
  );
  t.deepEqual(
    b1.evicted.map((d) => d.name),
    ['first'],
  );
  f.apply(m, b1);
  t.is(m.pendingChanges, 4);
  const snap = m.snapshot(); // deferred admissions survive state transfer
  const r = machine(suite, { maxJoinsPerBatch: 3 });
  r.restore(snap);
  const b2 = m.apply(cut(m)).batch!;
  t.deepEqual(r.apply(cut(r)).batch!.rekey.encoded, b2.rekey.encoded);
  f.apply(m, b2);
  const b3 = m.apply(cut(m)).batch!;
  t.deepEqual(
    b3.admitted.map((a) => a.name),
    ['q6'],
  );
  f.apply(m, b3);
  t.is(m.members, 7);
  t.is(m.pendingChanges, 0);
});
