/**
 * The server side of the leaf plane driven alone (no stack, socket or timer): a virtual clock,
 * an in-memory store, the views and deliveries a GroupMember would upcall, and a host that
 * records every effect. Uniform release (a batch reaches leaves only once a majority of the
 * primary view reported it durable), a non-primary view acknowledging no lease, and a state
 * transfer holding welcomes until a primary view's majority holds the new state.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { memberKey, type Delivery, type MemberKey, type View } from '../../core-group/index.js';
import {
  DataKeyring,
  DataSealer,
  decodeLeafFrame,
  encodeLeafFrame,
  type LeafFrame,
} from '../../gossip-edge/index.js';
import {
  LeafStateMachine,
  RETIRED_PUBLISH_GRACE_MS,
  ServerPlane,
  decodeCoreMessage,
  encodeCoreMessage,
  type PlaneMetrics,
  type PlaneStore,
  type PlaneTimer,
} from '../../leaf-plane/index.js';

const GROUP = new TextEncoder().encode('g');
const A = memberKey('a', 1);
const B = memberKey('b', 1);
const C = memberKey('c', 1);

function view(epoch: number, members: MemberKey[], primary: boolean, step = epoch): View {
  const id = { epoch, coord: members[0]! };
  return { id, members, primary, lastPrimary: { step, id, members } };
}

const viewText = (v: View): string => `${v.id.epoch}@${v.id.coord}`;

/** Counters, gauges and histograms that count nothing: the plane needs no prom-client. */
const metrics = new Proxy({} as PlaneMetrics, {
  get: () => ({ inc() {}, set() {}, observe() {} }),
});

function newMachine(suite: CipherSuite): LeafStateMachine {
  return new LeafStateMachine({ suite, group: GROUP, secret: new Uint8Array(32).fill(9), leaseMs: 60_000 });
}

/** One server's plane over recording effects, self = a, on a clock that moves only when told. */
async function harness() {
  const suite = await loadSuite();
  const machine = newMachine(suite);
  let index = 0;
  const store: PlaneStore = {
    get index() {
      return index;
    },
    commit: (cmds) => {
      index += cmds.length;
      return cmds.map((c) => machine.apply(c));
    },
    compact: () => {},
    sync: () => {},
  };
  const clock = { now: 1_000_000 };
  const timers: { timer: PlaneTimer; at: number }[] = [];
  const ordered: Uint8Array[] = [];
  const fifo: Uint8Array[] = [];
  const frames = new Map<string, LeafFrame[]>();
  const disconnected: string[] = [];
  const seed = new Uint8Array(32).fill(5);
  const plane = new ServerPlane(
    {
      name: 'a',
      suite,
      machine,
      store,
      record: {
        stateVersion: (i) => [1, 0, i, 0],
        gap: () => {},
        primaryInstalled: () => {},
        stateInstalled: () => {},
      },
      revocation: { installed: () => [], isRevokedSerial: () => false },
      signingSeed: seed,
      signingPublic: suite.ed25519PublicKey(seed),
      serial: '01',
      leaseMs: 60_000,
      leafKeyRefreshMs: 86_400_000,
      fullRefreshWindowMs: 60_000,
      exporter: () => undefined,
      meshSerialOf: () => undefined,
      links: {
        send: (peer, bytes) => {
          frames.set(peer, [...(frames.get(peer) ?? []), decodeLeafFrame(bytes)]);
          return true;
        },
        disconnect: (peer) => void disconnected.push(peer),
        remoteAddress: () => '127.0.0.1',
      },
      host: {
        multicast: (channel, payload) => {
          (channel === 'ordered' ? ordered : fifo).push(payload);
          return true;
        },
        setTimer: (timer, delay) =>
          void timers.push({ timer, at: clock.now + (delay === 'end-of-event' ? 0 : delay) }),
        timed: (_what, work) => work(),
      },
      metrics,
      log: { debug() {}, info() {}, warn() {}, error() {} },
    },
    clock.now,
  );
  let seq = 0;
  const h = {
    suite,
    plane,
    machine,
    clock,
    frames,
    fifo,
    disconnected,
    typesTo: (peer: string): string[] => (frames.get(peer) ?? []).map((f) => f.type),
    /** Fires every timer due by now (and those they set for now), in the order they were set. */
    runTimers(): void {
      for (;;) {
        const i = timers.findIndex((t) => t.at <= clock.now);
        if (i < 0) return;
        const [t] = timers.splice(i, 1);
        plane.onTimer(t!.timer, clock.now);
      }
    },
    /** The total order of a view whose every member is up: what this server multicast, delivered back to it. */
    deliverOrdered(afterGap = false): void {
      h.runTimers(); // the outbox flushes once the event is done
      for (const payload of ordered.splice(0)) {
        const d: Delivery = {
          sender: A,
          channel: 'ordered',
          seq: ++seq,
          payload,
          ...(afterGap ? { afterGap } : {}),
        };
        plane.deliver(d, clock.now);
        h.runTimers(); // group commit at the end of the delivering event
      }
    },
    /** Another member's `durable` ack for `v`. */
    ack(from: MemberKey, v: View, epoch: number): void {
      const payload = encodeCoreMessage({ kind: 'durable', value: { view: viewText(v), epoch } });
      plane.deliver({ sender: from, channel: 'fifo', seq: ++seq, payload }, clock.now);
      h.runTimers();
    },
    join(peer: string, name: string): void {
      plane.leafCertificate(peer, { name, serial: `s-${name}`, fingerprint: new Uint8Array(32) });
      plane.leafMessage(
        peer,
        encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }),
        clock.now,
      );
      h.deliverOrdered();
    },
    /** The coordinator's batch tick, and the cut it orders going round the total order. */
    /** A view installed, then unblocked (with the core key on the stack unblocks at its first key). */
    install(v: View): void {
      plane.view(v, A, clock.now);
      plane.unblock(clock.now);
      h.runTimers();
    },
    cut(): void {
      clock.now += 100;
      plane.batchTick(clock.now);
      h.deliverOrdered();
    },
    durableAcksSent: (): number[] =>
      fifo.flatMap((p) => {
        const m = decodeCoreMessage(p);
        return m.kind === 'durable' ? [m.value.epoch] : [];
      }),
  };
  return h;
}

test('ordered commands → group commit → batch; released to leaves only once a majority of the primary view acked it durable', async (t) => {
  const h = await harness();
  const v1 = view(1, [A, B, C], true);
  h.install(v1);
  t.true(h.plane.isCoordinator);
  t.true(
    h.fifo.some((p) => decodeCoreMessage(p).kind === 'signer'),
    'the signing key is announced in every view',
  );
  h.join('g/leaf/x', 'x');
  t.is(h.machine.entry('x')?.slot, -1, 'the admit went round the order and is durable, waiting for a cut');
  h.cut();
  const epoch = h.machine.epoch;
  t.true(epoch >= 1, 'the cut made a batch');
  t.true(h.machine.entry('x')!.slot >= 0, 'x is in the tree at this replica');
  t.true(h.durableAcksSent().includes(epoch), 'this replica says it holds the batch durably');
  h.runTimers();
  t.deepEqual(h.typesTo('g/leaf/x'), [], 'no welcome while only this server (1 of 3) holds the batch');
  t.is(h.plane.lastBatch, undefined);

  h.ack(B, view(0, [A, B, C], true), epoch); // an ack about another view counts for nothing
  t.deepEqual(h.typesTo('g/leaf/x'), []);
  h.clock.now += 7;
  h.ack(B, v1, epoch); // 2 of 3: a majority
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome']);
  t.deepEqual(h.plane.lastBatch, { epoch, appliedAtMs: h.clock.now });
  const w = h.frames.get('g/leaf/x')![0]!;
  t.is(w.type === 'welcome' ? w.body.epoch : -1, epoch);

  // A second batch with a departure: the evicted session learns it only after the majority too.
  h.plane.leafMessage('g/leaf/x', encodeLeafFrame('leave', { admittedEpoch: undefined }), h.clock.now);
  h.deliverOrdered();
  h.cut();
  t.is(h.machine.entry('x'), undefined);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome'], 'not evicted before the majority holds the batch');
  h.ack(C, v1, h.machine.epoch);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome', 'evicted']);
  t.deepEqual(h.disconnected, ['g/leaf/x']);
});

// System simulation seed 8193: a paused server's flush skipped an ordered admit (its payload never
// reached it) and delivered the cut after it; its batch of that epoch lacked the admit — another
// key — and the others' acks of that epoch number released it to a leaf: two keys for one epoch.
test('after a gap in the total order the replica is a branch: no ack or release on the others’ acks of the same epoch', async (t) => {
  const h = await harness();
  const v1 = view(1, [A, B, C], true);
  h.install(v1);
  h.join('g/leaf/x', 'x');
  h.clock.now += 100;
  h.plane.batchTick(h.clock.now);
  h.deliverOrdered(true); // the flush of v1 delivers the cut after a skipped message
  const epoch = h.machine.epoch;
  t.true(epoch >= 1, 'the branch applied the cut');
  t.false(h.durableAcksSent().includes(epoch), 'no ack of a branch batch');
  h.ack(B, v1, epoch);
  h.ack(C, v1, epoch);
  h.runTimers();
  t.deepEqual(h.typesTo('g/leaf/x'), [], 'the others’ batch of this epoch is another one: nothing released');
  t.is(h.plane.lastBatch, undefined);
  // The next primary view installs this replica's state at every member (no transfer replaced it):
  // their acks in that view are about this very state.
  const v2 = view(2, [A, B, C], true);
  h.install(v2);
  t.true(h.durableAcksSent().includes(epoch), 'acked in the new view');
  h.ack(B, v2, epoch);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome']);
});

test('a non-primary view acknowledges no lease renewal and orders no cut; a primary one does', async (t) => {
  const h = await harness();
  const peer = 'g/leaf/y';
  h.plane.leafCertificate(peer, { name: 'y', serial: 's-y', fingerprint: new Uint8Array(32) });
  h.install(view(3, [A, B], false, 2));
  t.false(h.plane.isCoordinator);
  h.plane.leafMessage(peer, encodeLeafFrame('leaseRenew', { seq: 1 }), h.clock.now);
  h.runTimers();
  t.deepEqual(h.typesTo(peer), [], 'no ack: the leaf fails over to a server that can renew it');
  h.plane.leafMessage(
    peer,
    encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }),
    h.clock.now,
  );
  const refusal = h.frames.get(peer)!.at(-1)!;
  t.true(refusal.type === 'error' && refusal.body.code === 'not-primary');
  h.clock.now += 5_000;
  h.plane.batchTick(h.clock.now);
  h.deliverOrdered();
  t.is(h.machine.epoch, 0, 'nothing is cut outside the primary');

  h.install(view(4, [A, B, C], true));
  h.plane.leafMessage(peer, encodeLeafFrame('leaseRenew', { seq: 2 }), h.clock.now);
  const ack = h.frames.get(peer)!.at(-1)!;
  t.true(ack.type === 'leaseAck' && ack.body.seq === 2);
});

test('a state transfer holds every welcome until a majority of a primary view holds the new state', async (t) => {
  const h = await harness();
  const v1 = view(1, [A, B, C], true);
  h.install(v1);
  h.join('g/leaf/x', 'x');
  h.cut();
  h.ack(B, v1, h.machine.epoch);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome']);

  // Another member's replica went further (one more batch) while this one was cut off.
  const other = newMachine(h.suite);
  other.restore(h.machine.snapshot());
  other.setPrimary(true);
  other.apply({
    kind: 'admit',
    value: { name: 'z', serial: 's-z', fingerprint: new Uint8Array(32), now: 1 },
  });
  other.apply({ kind: 'cutBatch', value: { epoch: other.epoch + 1, now: 2 } });
  h.plane.block(h.clock.now);
  h.plane.setState(other.snapshot(), [1, 0, 99, 0], h.clock.now);
  t.is(h.machine.epoch, other.epoch);
  const v2 = view(2, [A, B, C], true);
  h.install(v2);
  h.clock.now += 1_000;
  h.runTimers();
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome'], 'x waits: the sender’s newest batch may be orphaned');
  h.ack(B, v2, other.epoch - 1);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome'], 'an ack below the transferred epoch is not enough');
  h.ack(C, v2, other.epoch);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome', 'welcome']);
  const again = h.frames.get('g/leaf/x')!.at(-1)!;
  t.is(again.type === 'welcome' ? again.body.epoch : -1, other.epoch, 'welcomed at the transferred epoch');
});

test('lease grace: a primary view that lost a member renews every lease for two leases, whoever coordinates', async (t) => {
  const h = await harness();
  const v1 = view(1, [A, B, C], true);
  h.install(v1);
  h.join('g/leaf/x', 'x');
  h.cut();
  const before = h.machine.leaseUntil('x')!;
  // C (not the coordinator) dies silently: its leaves notice only when their renewals go
  // unanswered (up to one lease), then dial, are welcomed and renew elsewhere.
  h.clock.now += 10_000;
  h.install(view(2, [A, B], true));
  h.deliverOrdered();
  t.true(h.plane.isCoordinator, 'A coordinated before and after: no change of coordinator');
  t.is(h.machine.leaseUntil('x'), h.clock.now + 2 * 60_000, 'renewed for two leases from the view');
  t.true(h.machine.leaseUntil('x')! > before);
  // A view that lost nobody renews nothing.
  h.clock.now += 10_000;
  const held = h.machine.leaseUntil('x');
  h.install(view(3, [A, B, C], true));
  h.deliverOrdered();
  t.is(h.machine.leaseUntil('x'), held);
});

// Cluster test (CI under load): a leaf's publish under the epoch its server had released was
// refused as 'retired-epoch' because the server had already applied the next batch, which a
// majority did not yet hold — the leaf could not have had that epoch's key.
test('a publish under the epoch released to leaves is relayed while the next batch awaits its majority; retired only after the grace', async (t) => {
  const h = await harness();
  const v1 = view(1, [A, B, C], true);
  h.install(v1);
  h.join('g/leaf/x', 'x');
  h.cut();
  const released = h.machine.epoch;
  h.ack(B, v1, released);
  t.deepEqual(h.typesTo('g/leaf/x'), ['welcome']);
  const keyring = new DataKeyring(h.suite, { now: () => h.clock.now });
  keyring.install(released, new Uint8Array(32).fill(3));
  const sealer = new DataSealer(h.suite, keyring, { sender: 1 });
  const acks = (): string[] =>
    (h.frames.get('g/leaf/x') ?? []).flatMap((f) => (f.type === 'publishAck' ? [f.body.result] : []));
  const publish = (): void => {
    h.plane.leafMessage(
      'g/leaf/x',
      encodeLeafFrame('dataPublish', { envelope: sealer.seal(Uint8Array.of(1)) }),
      h.clock.now,
    );
    h.runTimers();
  };

  h.join('g/leaf/y', 'y');
  h.cut();
  t.is(h.machine.epoch, released + 1, 'the next batch is applied here');
  t.deepEqual(h.plane.lastBatch?.epoch, released, '… and not released: x cannot hold its key');
  publish();
  t.deepEqual(acks(), ['accepted']);

  h.ack(B, v1, released + 1); // released: x gets the push; late publishes under the old epoch pass for the grace
  publish();
  h.clock.now += RETIRED_PUBLISH_GRACE_MS + 1;
  publish();
  t.deepEqual(acks(), ['accepted', 'accepted', 'retired-epoch']);
});
