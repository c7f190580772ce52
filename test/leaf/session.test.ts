/**
 * LeafSession driven directly: scripted frames from a real leaf state machine (real keytree,
 * real signed batches), a virtual clock, no sockets and no timers. Each test checks the effects
 * the machine asks its host for.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { decodeHeader, decodePart } from '../../keytree/index.js';
import { DataKeyring, DataSealer, MAX_EARLY, rekeyItem, type RekeyPush } from '../../gossip-edge/index.js';
import { LeafSession } from '../../leaf-sdk/index.js';
import { Core, LEASE_MS, SERVER, of, sent, welcomed, wire } from './session-kit.js';

let suite: CipherSuite;
test.before(async () => {
  suite = await loadSuite();
});

test('link up sends a join and arms the welcome timeout; no welcome in time fails the join', (t) => {
  const session = new LeafSession({ suite, welcomeTimeoutMs: 500 });
  const up = session.handle(
    { type: 'linkUp', link: { server: SERVER, exportKeyingMaterial: () => undefined } },
    0,
  );
  t.deepEqual(sent(up), ['join']);
  t.deepEqual(of(up, 'setTimer'), [{ type: 'setTimer', timer: 'welcome', afterMs: 500 }]);
  const late = session.handle({ type: 'timer', timer: 'welcome' }, 500);
  t.is(of(late, 'joinFailed').length, 1);
  t.regex(of(late, 'joinFailed')[0]!.error.message, /no welcome within 500 ms/);
  t.false(session.welcomed);
});

test('welcome → key event (the core’s key), welcomed, lease armed; a push → the next key; replay ignored', (t) => {
  const core = new Core(suite, 0);
  const { session, effects } = welcomed(suite, core, 'l1', 0);
  t.deepEqual(of(effects, 'key'), [{ type: 'key', epoch: core.machine.epoch, keyId: core.keyId() }]);
  t.is(of(effects, 'welcomed').length, 1);
  t.deepEqual(of(effects, 'setTimer'), [{ type: 'setTimer', timer: 'lease', afterMs: LEASE_MS / 3 }]);
  t.true(session.welcomed);

  core.admit('l2', 10);
  const push = core.cut(10, core.slotOf('l1'))!;
  const next = session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 10);
  t.deepEqual(of(next, 'key'), [{ type: 'key', epoch: core.machine.epoch, keyId: core.keyId() }]);
  t.is(session.stats.tlsRekeys, 1);

  const replay = session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 20);
  t.deepEqual(of(replay, 'key'), []);
  t.is(session.stats.rekeysIgnored, 1);
});

test('data sealed under the next epoch before its push: held, delivered when the push brings the key; bounded', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  const start = core.machine.epoch;
  core.admit('l2', 10);
  const push = core.cut(10, core.slotOf('l1'))!;
  // A publisher already on the next epoch (its server released the batch before ours did).
  const ring = new DataKeyring(suite, { now: () => 10 });
  ring.install(core.machine.epoch, core.machine.groupKey()!);
  const publisher = new DataSealer(suite, ring, { sender: 77 });
  const early = publisher.seal(new TextEncoder().encode('ahead of my key'));
  const ahead = session.handle({ type: 'frame', frame: wire('dataDeliver', { envelope: early }) }, 11);
  t.deepEqual(of(ahead, 'message'), []);
  t.is(session.stats.dataEarly, 1);
  t.is(session.stats.decryptFailures['unknown-epoch'], 0);
  // Its push arrives: the key, then the held message.
  const keyed = session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 12);
  t.is(session.epoch, start + 1);
  t.deepEqual(
    of(keyed, 'message').map((m) => new TextDecoder().decode(m.data)),
    ['ahead of my key'],
  );
  t.is(session.stats.tlsData, 1);
  // The same envelope again (from another path): a replay, not a second message.
  session.handle({ type: 'frame', frame: wire('dataDeliver', { envelope: early }) }, 13);
  t.is(session.stats.tlsData, 1);
  t.is(session.stats.decryptFailures.replay, 1);

  // Bounds: more than EARLY_EPOCHS ahead is not held; the hold keeps the newest MAX_EARLY.
  const far = new DataKeyring(suite, { now: () => 20 });
  far.install(session.epoch! + 3, new Uint8Array(32).fill(5));
  session.handle(
    {
      type: 'frame',
      frame: wire('dataDeliver', {
        envelope: new DataSealer(suite, far, { sender: 78 }).seal(new Uint8Array(1)),
      }),
    },
    20,
  );
  t.is(session.stats.dataEarly, 1);
  t.is(session.stats.decryptFailures['unknown-epoch'], 1);
  core.admit('l3', 30);
  const push2 = core.cut(30, core.slotOf('l1'))!;
  const ring2 = new DataKeyring(suite, { now: () => 30 });
  ring2.install(core.machine.epoch, core.machine.groupKey()!);
  const flood = new DataSealer(suite, ring2, { sender: 79 });
  for (let i = 0; i < MAX_EARLY + 5; i++)
    session.handle(
      { type: 'frame', frame: wire('dataDeliver', { envelope: flood.seal(Uint8Array.of(i)) }) },
      31,
    );
  t.is(session.stats.dataEarly, 1 + MAX_EARLY + 5);
  const out = session.handle({ type: 'frame', frame: wire('rekeyPush', push2) }, 32);
  t.deepEqual(
    of(out, 'message').map((m) => m.data[0]),
    Array.from({ length: MAX_EARLY }, (_, i) => i + 5),
  );
});

test('a push signed by a key the welcome did not list: protocol error, link dropped', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  core.admit('l2', 10);
  const push = core.cut(10, core.slotOf('l1'))!;
  const forged: RekeyPush = { ...push, signer: suite.ed25519PublicKey(new Uint8Array(32).fill(9)) };
  const effects = session.handle({ type: 'frame', frame: wire('rekeyPush', forged) }, 10);
  t.is(of(effects, 'dropLink').length, 1);
  t.regex(of(effects, 'dropLink')[0]!.reason.message, /unknown-signer/);
  t.deepEqual(of(effects, 'key'), []);
  t.is(session.epoch, core.machine.epoch - 1);
});

test('a gap (an epoch skipped) asks for a catch-up once', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  core.admit('l2', 10);
  core.cut(10);
  core.admit('l3', 20);
  const ahead = core.cut(20, core.slotOf('l1'))!;
  const effects = session.handle({ type: 'frame', frame: wire('rekeyPush', ahead) }, 20);
  t.deepEqual(sent(effects), ['catchUpRequest']);
  t.deepEqual(of(effects, 'key'), []);
  const again = session.handle({ type: 'frame', frame: wire('rekeyPush', ahead) }, 30);
  t.deepEqual(sent(again), [], 'one catch-up in flight');
  const reply = core.history.catchUp(session.epoch! + 1, session.slot!);
  const caught = session.handle({ type: 'frame', frame: wire('catchUpReply', reply) }, 40);
  t.is(of(caught, 'key').at(-1)?.epoch, core.machine.epoch);
});

test('gossip items: a genuine part is admitted and applies; relabelled and future copies are refused', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  core.admit('l2', 10);
  const push = core.cut(10, core.slotOf('l1'))!;
  const arity = decodeHeader(push.header).arity;
  const part = decodePart(push.parts[0]!);
  const genuine = rekeyItem({ ...push, parts: [push.parts[0]!] }, part, arity);

  // Relabelled: the same signed part under a wider scope, another position, a future epoch.
  const wider = { ...genuine, scopeStart: 0, scopeEnd: genuine.scopeEnd + 1_000 };
  const moved = { ...genuine, id: genuine.id + 1 };
  const future = { ...genuine, epoch: genuine.epoch + 3 };
  for (const item of [wider, moved, future]) t.false(session.admit(item, 10), 'relabelled item refused');
  t.is(session.stats.gossipRefused, 3);
  // Garbage payload under a rekey id.
  t.false(session.admit({ ...genuine, payload: new Uint8Array([1, 2, 3]) }, 10));
  t.is(session.stats.gossipRefused, 4);

  t.true(session.admit(genuine, 10));
  const applied = session.handle({ type: 'gossipDeliver', item: genuine, pulled: false }, 10);
  t.deepEqual(
    of(applied, 'key').map((k) => k.epoch),
    [core.machine.epoch],
  );
  t.is(session.stats.gossipRekeys, 1);
});

test('leases: renewals on the virtual clock; acks keep the link; silence drops it after 2/3 of the lease', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  const every = LEASE_MS / 3;
  let now = 0;
  // Acked renewals: never a drop.
  for (let i = 0; i < 6; i++) {
    now += every;
    const fx = session.handle({ type: 'timer', timer: 'lease' }, now);
    t.deepEqual(sent(fx), ['leaseRenew']);
    t.deepEqual(of(fx, 'setTimer'), [{ type: 'setTimer', timer: 'lease', afterMs: every }]);
    session.handle(
      { type: 'frame', frame: wire('leaseAck', { seq: i, leaseMs: LEASE_MS, stream: undefined }) },
      now,
    );
  }
  // Acks stop: renewals go on until no ack for 2/3 of the lease (+ one period), then the link drops.
  const lastAck = now;
  let dropAt: number | undefined;
  for (let i = 0; i < 10 && dropAt === undefined; i++) {
    now += every;
    const fx = session.handle({ type: 'timer', timer: 'lease' }, now);
    const drop = of(fx, 'dropLink');
    if (drop.length > 0) {
      t.regex(drop[0]!.reason.message, /lease renewals not acknowledged/);
      t.deepEqual(of(fx, 'setTimer'), [], 'no renewal after the drop');
      dropAt = now;
    } else t.deepEqual(sent(fx), ['leaseRenew']);
  }
  t.truthy(dropAt);
  t.true(dropAt! - lastAck > (2 * LEASE_MS) / 3 + every);
  t.true(dropAt! - lastAck <= LEASE_MS + every, 'before the lease lapses (one period slack)');
  t.is(session.stats.protocolErrors, 1);

  // The host reports the link down: the lease timer is cancelled, nothing more is sent.
  const down = session.handle({ type: 'linkDown', error: new Error('dropped') }, now);
  t.true(of(down, 'cancelTimer').some((c) => c.timer === 'lease'));
  t.deepEqual(sent(session.handle({ type: 'timer', timer: 'lease' }, now + every)), []);
});

test('publish window: backpressure, a refused publish, drain at half the window, lost answers counted', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0, { publishWindow: 4 });
  const data = new Uint8Array([1, 2, 3]);
  for (let i = 0; i < 4; i++) {
    const r = session.publish(data, 10);
    t.true(r.sent);
    t.deepEqual(sent(r.effects), ['dataPublish']);
    t.is(of(r.effects, 'send')[0]!.seq, i);
  }
  const full = session.publish(data, 10);
  t.false(full.sent);
  t.deepEqual(full.effects, [], 'nothing sent while the window is full');
  t.is(session.stats.publishesDeferred, 1);

  const ack = (result: 'accepted' | 'overloaded') =>
    session.handle({ type: 'frame', frame: wire('publishAck', { result }) }, 20);
  t.deepEqual(of(ack('accepted'), 'drain'), [], '3 in flight: more than half the window');
  const refused = ack('overloaded');
  t.deepEqual(of(refused, 'refused'), [{ type: 'refused', seq: 1, reason: 'overloaded' }]);
  t.is(of(refused, 'drain').length, 1, 'drain at half the window');
  t.is(session.publishesInFlight, 2);

  // The host could not send one: it is not awaited.
  const r = session.publish(data, 30);
  session.handle({ type: 'sendFailed', frameType: 'dataPublish', seq: of(r.effects, 'send')[0]!.seq! }, 30);
  t.is(session.publishesInFlight, 2);
  // The link goes: the two unanswered are counted, not awaited.
  session.handle({ type: 'linkDown', error: new Error('gone') }, 40);
  t.is(session.publishesInFlight, 0);
  t.is(session.stats.publishesUnanswered, 2);
  t.is(session.stats.publishes.accepted, 1);
  t.is(session.stats.publishes.overloaded, 1);
  // A publishAck for no publish is a protocol violation.
  const s2 = welcomed(suite, core, 'l9', 50).session;
  const stray = s2.handle({ type: 'frame', frame: wire('publishAck', { result: 'accepted' }) }, 50);
  t.is(of(stray, 'dropLink').length, 1);
});

test('eviction: an evicted event, keys wiped, timers cancelled, no new join', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  const effects = session.handle(
    { type: 'frame', frame: wire('evicted', { reason: 'revoked', epoch: 9 }) },
    10,
  );
  t.deepEqual(of(effects, 'evicted'), [{ type: 'evicted', reason: 'revoked' }]);
  t.true(of(effects, 'cancelTimer').some((c) => c.timer === 'lease'));
  t.is(session.epoch, undefined);
  t.false(session.welcomed);
  t.throws(() => session.publish(new Uint8Array(1), 10), { message: /not connected/ });
  const again = session.handle(
    { type: 'linkUp', link: { server: SERVER, exportKeyingMaterial: () => undefined } },
    20,
  );
  t.deepEqual(sent(again), []);
  t.is(of(again, 'joinFailed').length, 1);
});

test('eviction while joining fails the join with the reason', (t) => {
  const session = new LeafSession({ suite });
  session.handle({ type: 'linkUp', link: { server: SERVER, exportKeyingMaterial: () => undefined } }, 0);
  const effects = session.handle(
    { type: 'frame', frame: wire('evicted', { reason: 'revoked', epoch: 1 }) },
    1,
  );
  const failed = of(effects, 'joinFailed');
  t.is(failed.length, 1);
  t.is(failed[0]!.error.name, 'LeafEvictedError');
  t.is(of(effects, 'evicted').length, 1);
});

/**
 * A welcomed session whose admission another join of its certificate replaced: the next push
 * has no part it can use, so it re-joins on the live link (seed 6019 of the system simulation).
 */
function rejoined(welcomeTimeoutMs: number) {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0, { welcomeTimeoutMs });
  const slot = core.slotOf('l1');
  core.admit('l1', 10);
  const push = core.cut(10, slot)!;
  const effects = session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 10);
  return { core, session, effects };
}

test('a re-join on a live link that no welcome answers (its admit lost in the core) ends the link after the welcome timeout', (t) => {
  const { session, effects } = rejoined(500);
  t.deepEqual(sent(effects), ['join']);
  t.is(session.stats.rejoins, 1);
  t.deepEqual(of(effects, 'setTimer'), [{ type: 'setTimer', timer: 'welcome', afterMs: 500 }]);
  // The server holds the session for the welcome (no pushes) but still acks renewals: the lease
  // check alone never ends such a link.
  const renew = session.handle({ type: 'timer', timer: 'lease' }, LEASE_MS / 3);
  t.deepEqual(sent(renew), ['leaseRenew']);
  session.handle(
    { type: 'frame', frame: wire('leaseAck', { seq: 0, leaseMs: LEASE_MS, stream: undefined }) },
    LEASE_MS / 3,
  );
  // A second path loss meanwhile re-joins again but keeps the first deadline.
  const again = session.handle(
    { type: 'frame', frame: wire('catchUpReply', { pushes: [], rejoin: true }) },
    400,
  );
  t.deepEqual(sent(again), ['join']);
  t.deepEqual(of(again, 'setTimer'), []);
  const late = session.handle({ type: 'timer', timer: 'welcome' }, 510);
  t.is(of(late, 'dropLink').length, 1);
  t.regex(of(late, 'dropLink')[0]!.reason.message, /no welcome within 500 ms of a re-join/);
  // The host fails over; the next link joins with what we hold (a resume the server may refuse).
  session.handle({ type: 'linkDown', error: new Error('dropped') }, 510);
  const up = session.handle(
    { type: 'linkUp', link: { server: SERVER, exportKeyingMaterial: () => undefined } },
    600,
  );
  t.deepEqual(sent(up), ['join']);
  t.deepEqual(of(up, 'setTimer'), [{ type: 'setTimer', timer: 'welcome', afterMs: 500 }]);
});

test('a re-join answered by a welcome in time: the new admission’s keys, the welcome timeout cancelled', (t) => {
  const { core, session } = rejoined(500);
  const fx = session.handle({ type: 'frame', frame: core.welcome('l1') }, 100);
  t.deepEqual(of(fx, 'key'), [{ type: 'key', epoch: core.machine.epoch, keyId: core.keyId() }]);
  t.true(of(fx, 'cancelTimer').some((e) => e.timer === 'welcome'));
  t.is(session.admissionEpoch, core.machine.entry('l1')!.admittedEpoch);
  // A timer that fired before its cancel reached the host changes nothing.
  const stale = session.handle({ type: 'timer', timer: 'welcome' }, 510);
  t.deepEqual(of(stale, 'dropLink'), []);
  t.true(session.welcomed);
});

test('garbage bytes from the server: bad-frame, link dropped, no throw', (t) => {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'l1', 0);
  const effects = session.handle({ type: 'frame', frame: new Uint8Array([0xff, 0, 1, 2]) }, 10);
  t.is(of(effects, 'dropLink').length, 1);
  t.regex(of(effects, 'dropLink')[0]!.reason.message, /bad-frame/);
  t.is(of(effects, 'error').length, 1);
});
