/**
 * The system simulation in CI: the shipped core stack, leaf plane and leaf session under faults
 * (sim/system/). A handful of seeds keep every property; a run replays exactly; the checkers
 * catch what they are there to catch; and the seeds of a bug it found stay as regressions.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { runSystem } from '../../sim/system/run.js';
import { SystemLedger, groupKeyId } from '../../sim/system/ledger.js';
import {
  LeafStateMachine,
  RekeyHistory,
  signBatch,
  type ApplyResult,
  type BatchOutput,
  type LeafCommand,
} from '../../leaf-plane/index.js';
import { encodeLeafFrame } from '../../gossip-edge/index.js';
import { encodeWelcome } from '../../keytree/index.js';
import { AttackWatch } from '../../sim/system/adversary.js';

const suite = await loadSuite();
const SEEDS = Array.from({ length: 20 }, (_, i) => 1 + i);

for (const seed of SEEDS)
  test(`system simulation: seed ${seed} keeps every property (npm run sim -- system --seed ${seed})`, (t) => {
    const r = runSystem({ seed, suite });
    t.deepEqual(r.violations, [], `replay: npm run sim -- system --seed ${seed}`);
    // The run did something: leaves were admitted and rekeyed, and it converged after the faults.
    t.true(r.admissions > 0 && r.leafKeys > r.admissions && r.batches > 0);
    t.true(r.convergeMs >= 0, 'every leaf holds the group key of the primary view after the quiet point');
  });

test('system simulation: a run replays exactly from its seed', (t) => {
  const a = runSystem({ seed: 3, suite });
  const b = runSystem({ seed: 3, suite });
  t.is(a.traceHash, b.traceHash);
  t.is(a.leafKeys, b.leafKeys);
});

// Per-leaf partitions (on by default, so the seeds above run them under faults): on a quiet
// network, the leaf cut from every server for longer than its lease is evicted, and every leaf —
// the cut ones too — holds the group key at the end.
for (const seed of [1, 2, 4])
  test(`system simulation, per-leaf partitions on a quiet network: seed ${seed} (npm run sim -- system --no-faults --seed ${seed})`, (t) => {
    const r = runSystem({ seed, suite, faults: false });
    t.deepEqual(r.violations, []);
    t.true(
      r.leafCuts!.shortCut !== undefined && r.leafCuts!.longCut !== undefined,
      JSON.stringify(r.leafCuts),
    );
    t.true(r.leafCuts!.evictionChecked);
    t.true(r.convergeMs >= 0);
  });

// A core server revoked by the CRL (sim/system/scenarios.ts planServerRevocation): the others
// refuse it, hand the CRL to their leaves in band and run the full own-key refresh; the revoked
// server's tree (taken at the revocation) with every later rekey part opens no group key after
// the refresh completed, and every leaf welcomed at the end holds the CRL and trusts no key of it.
for (const seed of [2, 3, 4, 45])
  test(`system simulation, a revoked core server: seed ${seed} (npm run sim -- system --revoke-server --seed ${seed})`, (t) => {
    const r = runSystem({ seed, suite, revokeServer: true });
    t.deepEqual(r.violations, []);
    const v = r.serverRevocation!;
    t.true(v.revoked && v.stolenPaths > 0, JSON.stringify(v));
    t.true(v.refreshDoneEpoch !== undefined && v.leavesChecked > 0, JSON.stringify(v));
  });

// Storage faults (--storage-faults): failing appends, syncs and replaces stop the server (as
// KeyServer does since the fix: isStoreFailure) and a supervisor restarts it; one server's disk
// comes back older after a crash. These seeds keep every property: the servers stopped and came
// back, and the rolled-back server either caught up or refused to start (seed 48) while the rest
// went on.
for (const seed of [41, 45, 47, 48])
  test(`system simulation with storage faults: seed ${seed} (npm run sim -- system --storage-faults --seed ${seed})`, (t) => {
    const r = runSystem({ seed, suite, storageFaults: true });
    t.deepEqual(r.violations, []);
    t.true(r.storage!.rollbacks === 1, JSON.stringify(r.storage));
    if (seed !== 48) t.true(r.storage!.stops > 0, JSON.stringify(r.storage));
    else t.is(r.storage!.startRefusals.length, 1);
  });

// Finding, kept as seeds that fail (test.failing: it passes while they do; the day they keep
// every property it fails, and they become ordinary seeds): one server's data dir rolled back
// (its leaf-store snapshot, its log, or both with the primary record) forks the group key — two
// keys released for one epoch. Without the rollback (failing writes only) each of them passes.
// As the core simulation's --stale-disks: a rollback is not tolerated (see the report).
for (const seed of [68, 178, 225])
  test.failing(
    `finding: a rolled-back data dir on one server forks the group key: seed ${seed} (npm run sim -- system --storage-faults --seed ${seed})`,
    (t) => {
      const r = runSystem({ seed, suite, storageFaults: true });
      t.deepEqual(r.violations, []);
    },
  );

// An adversarial leaf (sim/system/adversary.ts) floods one server with catch-ups for its own and
// foreign paths, replays renewals (a silent victim's too), joins, welcomes and its previous link's
// frames, and sends garbage: under faults, and on a quiet network where the attacked server's view
// and the victim's eviction are checked too.
for (const [seed, faults] of [
  [1, true],
  [2, true],
  [3, true],
  [4, true],
  [1, false],
  [2, false],
  [3, false],
] as const)
  test(`system simulation with an adversarial leaf: seed ${seed}${faults ? '' : ', no faults'} (npm run sim -- system --adversary${faults ? '' : ' --no-faults'} --seed ${seed})`, (t) => {
    const r = runSystem({ seed, suite, adversary: true, faults });
    t.deepEqual(r.violations, []);
    const a = r.adversary!;
    // The attack reached the edge: catch-up replies (own path), foreign requests refused, parts judged.
    t.true(a.catchUpReplies > 0 && a.foreignRefusals > 0 && a.partsJudged > 0, JSON.stringify(a));
    if (!faults)
      t.true(a.primaryChecked && a.victimChecked, 'a quiet network checks the view and the victim');
  });

// Regression seeds found by this simulation: LeafStore defers the fsync of admit-only commits,
// while ServerPlane.view recorded the store's index (unsynced admits included) durably in the
// PrimaryRecord; a machine crash that lost those admits left a record ahead of the store, and the
// server refused to start ("records a state after command 7, the leaf store ends at 6"). The
// plane now syncs the store before it records a primary installation.
// (They replay the run as it was found: without the per-leaf partitions added since.)
for (const seed of [145, 329, 462, 597])
  test(`system simulation: seed ${seed}, a server restarts after a crash that lost deferred admits`, (t) => {
    const r = runSystem({ seed, suite, leafCuts: false });
    t.deepEqual(r.violations, []);
  });

// Regression seed: a leaf re-linked (a new admission under the same certificate replaced the old
// one in the same commit) and its certificate was revoked at once: the batch removed the old
// admission as 'replaced', not as the revocation, and a revoke of a leaf whose lease lapsed earlier
// in the commit cut nothing at all. Both now cut at once as 'revoked' (LeafStateMachine.revoke).
test('system simulation: seed 5062, a revocation of a leaf whose old admission is already leaving', (t) => {
  const r = runSystem({ seed: 5062, suite });
  t.deepEqual(r.violations, []);
});

// Regression seed: a leaf welcomed under an admission its own later join replaced lost its path
// and re-joined on the live link; the admit that re-join ordered was dropped by the core (its
// sequencer crashed, the message unordered), and the server, holding the link for a welcome, sent
// no pushes but acked every renewal: the leaf waited on epoch 4 for ever. A re-join now has the
// welcome deadline a joining link has (LeafSession): the link ends, the leaf fails over.
test('system simulation: seed 6019, a re-join on a live link whose admit the core lost', (t) => {
  const r = runSystem({ seed: 6019, suite });
  t.deepEqual(r.violations, []);
  t.true(r.convergeMs >= 0, 'converged');
});

// Regression seed: a server paused in a primary view missed an ordered admit's payload; its flush
// skipped the admit and delivered the cut after it (Delivery.afterGap), so its batch of epoch 5 had
// another key; the others' acks of epoch 5 released it to a leaf: two keys for epoch 5. A replica
// now neither acks nor releases after a gap until the next view installs one state (ServerPlane).
test('system simulation: seed 8193, a batch applied after a gap in the total order is not released', (t) => {
  const r = runSystem({ seed: 8193, suite });
  t.deepEqual(r.violations, []);
});

test('system checkers: two keys for one epoch (a fork) and a key before admission (secrecy) are violations', (t) => {
  const ledger = new SystemLedger(suite);
  ledger.welcomed('a', 3);
  ledger.leafKey('a', 3, 'k3', 3);
  ledger.leafKey('b', 3, 'other', 3); // the same epoch, another key
  ledger.leafKey('a', 2, 'k2', 3); // before its admission
  ledger.checkEnd(undefined);
  const properties = ledger.violations.map((v) => v.property).sort();
  t.deepEqual(properties, ['fork', 'secrecy']);
});

test('system checkers: a key of the epoch that evicted a leaf, and a welcomed admission the registry lost, are violations', (t) => {
  const ledger = new SystemLedger(suite);
  const key5 = new Uint8Array(32).fill(5);
  // What the ledger reads of a replica and of the final registry (a machine at epoch 5 holding nobody).
  const machine = {
    epoch: 5,
    groupKey: () => key5,
    entry: () => undefined,
    parts: () => ({ pendingDepartures: [], entries: new Map() }),
    isRevoked: () => false,
  } as unknown as LeafStateMachine;
  ledger.welcomed('a', 3);
  ledger.leafKey('a', 3, 'k3', 3);
  ledger.welcomed('c', 3);
  const cut = { kind: 'cutBatch', value: { epoch: 5, now: 0 } } as const;
  const batch = { epoch: 5, evicted: [{ name: 'a', memberId: 1, slot: 0, reason: 'left', serial: 'AA' }] };
  ledger.committed('s0', machine, [cut], [{ batch } as unknown as ApplyResult], [undefined], {
    epoch: 4,
    keyId: '?',
  });
  t.deepEqual(ledger.violations, []);
  ledger.leafKey('a', 5, groupKeyId(suite, key5), 3); // the batch that evicted it
  ledger.checkEnd(machine);
  t.deepEqual(ledger.violations.map((v) => v.property).sort(), ['durability', 'secrecy']);
  t.regex(ledger.violations.find((v) => v.property === 'durability')!.detail, /^c was welcomed at 3/);
});

// Seed 1463: two replicas cut epochs 9–11 on a branch the core discarded (cut off, then
// restarted), two others cut another epoch 11 that evicted a leaf that left; no leaf got either
// epoch 11, so the ledger took the branch most replicas applied, and a 2–2 tie went to the
// discarded branch (applied first): 'welcomed, never evicted, but the final registry holds
// nothing'. The lineage is now the batch the next epoch leaves got descends from.
test('system simulation: seed 1463, an epoch no leaf got, applied on a discarded branch too', (t) => {
  const r = runSystem({ seed: 1463, suite });
  t.deepEqual(r.violations, []);
});

test('system checkers: an epoch no leaf got is judged on the batch the next released epoch descends from', (t) => {
  const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
  const id = (n: number): string => groupKeyId(suite, key(n));
  // What the ledger reads of a replica after a commit, and of the final registry (holding nobody).
  const replica = (epoch: number, k: number) =>
    ({
      epoch,
      groupKey: () => key(k),
      entry: () => undefined,
      parts: () => ({ pendingDepartures: [], entries: new Map() }),
      isRevoked: () => false,
    }) as unknown as LeafStateMachine;
  const cut = (epoch: number): LeafCommand => ({ kind: 'cutBatch', value: { epoch, now: 0 } });
  const batch = (epoch: number, evicted: string[]): ApplyResult =>
    ({
      batch: {
        epoch,
        evicted: evicted.map((name) => ({ name, memberId: 1, slot: 0, reason: 'left', serial: 'AA' })),
      },
    }) as unknown as ApplyResult;
  const DISCARDED = 1;
  const LINEAGE = 2;
  const NEXT = 3;
  /** Two epochs 11 (s3 and s0 on a discarded branch first, then s4 and s2 evicting 'a'); 12 on `twelveOn`. */
  const run = (twelveOn: number): SystemLedger => {
    const ledger = new SystemLedger(suite);
    ledger.welcomed('a', 10);
    ledger.leafKey('a', 10, id(10), 10);
    const at10 = { epoch: 10, keyId: id(10) };
    for (const s of ['s3', 's0'])
      ledger.committed(s, replica(11, DISCARDED), [cut(11)], [batch(11, [])], [undefined], at10);
    for (const s of ['s4', 's2'])
      ledger.committed(s, replica(11, LINEAGE), [cut(11)], [batch(11, ['a'])], [undefined], at10);
    // s4 cuts 12 on its own state, s3 on the state it adopted (state transfer): both the same 11.
    for (const s of ['s4', 's3'])
      ledger.committed(s, replica(12, NEXT), [cut(12)], [batch(12, [])], [undefined], {
        epoch: 11,
        keyId: id(twelveOn),
      });
    ledger.leafKey('b', 12, id(NEXT), 12); // no leaf got 11; a leaf got 12
    ledger.checkEnd(replica(12, NEXT));
    return ledger;
  };
  t.deepEqual(run(LINEAGE).violations, [], "the released 12 descends from the 11 that evicted 'a'");
  // The same replicas, but 12 descends from the branch that never evicted 'a': its admission is lost.
  t.deepEqual(
    run(DISCARDED).violations.map((v) => v.detail),
    ['a was welcomed at 10, never evicted, but the final registry holds nothing'],
  );
});

test('adversary checker: a rekey part off the adversary’s own path, and catch-up replies over its budget, are violations', (t) => {
  // A real replica and rekey history: mallory and three others join, then one more joins (epoch 2).
  const m = new LeafStateMachine({
    suite,
    group: new TextEncoder().encode('g'),
    secret: new Uint8Array(32).fill(7),
  });
  m.setPrimary(true);
  const admit = (name: string): LeafCommand => ({
    kind: 'admit',
    value: { name, serial: `s-${name}`, fingerprint: new Uint8Array(32).fill(1), now: 0 },
  });
  const cut = (): BatchOutput => m.apply({ kind: 'cutBatch', value: { epoch: m.epoch + 1, now: 0 } }).batch!;
  const signing = new Uint8Array(32).fill(3);
  const history = new RekeyHistory();
  const record = (b: BatchOutput): void =>
    history.record(b, suite.ed25519PublicKey(signing), signBatch(suite, signing, b));
  for (const n of ['mallory', 'a', 'b', 'c', 'd']) m.apply(admit(n));
  record(cut());
  const welcome = m.welcomeFor('mallory')!;
  for (const n of ['e', 'f', 'g', 'h', 'i', 'j', 'k']) m.apply(admit(n));
  record(cut());
  const own = history.pushFor(m.epoch, welcome.slot)!.push;
  const other = [...m.parts().entries.values()].find(
    (e) => e.slot >= 0 && history.pushFor(m.epoch, e.slot)!.push.parts[0]! !== own.parts[0]!,
  )!;
  const foreign = history.pushFor(m.epoch, other.slot)!.push;

  const ledger = new SystemLedger(suite);
  const watch = new AttackWatch(ledger, new Map([[9, 'mallory-0']]));
  const welcomeFrame = encodeLeafFrame('welcome', {
    welcome: encodeWelcome(welcome),
    epoch: welcome.epoch,
    admittedEpoch: welcome.epoch,
    memberId: 0,
    leaseMs: 3000,
    signers: [],
    crls: [],
  });
  watch.sent('s0', 0, 9, welcomeFrame, 0);
  watch.sent('s0', 0, 9, encodeLeafFrame('rekeyPush', own), 1);
  t.deepEqual(ledger.violations, [], 'its own path is no violation');
  watch.sent('s0', 0, 9, encodeLeafFrame('catchUpReply', { pushes: [foreign], rejoin: false }), 2);
  t.deepEqual(
    ledger.violations.map((v) => v.property),
    ['secrecy'],
  );
  t.is(watch.partsJudged, 2);
  // 42 replies at one instant: over the per-leaf limiter's burst (40) and the check's one of slack.
  for (let i = 0; i < 42; i++)
    watch.sent('s1', 0, 9, encodeLeafFrame('catchUpReply', { pushes: [], rejoin: true }), 5);
  t.deepEqual(
    ledger.violations.map((v) => v.property),
    ['secrecy', 'adversary'],
  );
});
