/**
 * Adversary: a replayed welcome. A welcome is the server's word over an authenticated link, not
 * a signed statement, so nothing in it proves it is current: a captured welcome replayed later
 * (by a server that kept old frames, or simply a lagging server answering a re-join) carries a
 * genuine key of an epoch the group has left. A leaf that took it would go back to that key —
 * report it to the application, seal under it, export secrets from it — while members evicted
 * since hold it. The rule: within one admission a welcome never moves the leaf's key backwards.
 *
 * Driven sans-IO: the real leaf state machine signs real batches (session-kit.ts), the shipped
 * LeafSession receives the frames on a virtual clock.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { decodeDataEnvelope, decodeLeafFrame } from '../../gossip-edge/index.js';
import type { LeafSession } from '../../leaf-sdk/index.js';
import { type LeafSessionEffect } from '../../leaf-sdk/index.js';
import { Core, of, welcomed, wire } from '../leaf/session-kit.js';

let suite: CipherSuite;
test.before(async () => {
  suite = await loadSuite();
});

/** The epoch a publish right now is sealed under (read from the envelope's clear header). */
function sealingEpoch(session: LeafSession, now: number): number {
  const { sent, effects } = session.publish(new Uint8Array([1]), now);
  if (!sent) throw new Error('publish refused');
  const frame = of(effects, 'send').find((e) => e.frameType === 'dataPublish')!;
  const decoded = decodeLeafFrame(frame.bytes);
  if (decoded.type !== 'dataPublish') throw new Error('not a publish');
  return decodeDataEnvelope(decoded.body.envelope).header.epoch;
}

/** A leaf welcomed at E0, then two batches later at E2; the welcome of E0 kept by the attacker. */
function leafTwoEpochsOn(): { core: Core; session: LeafSession; oldWelcome: Uint8Array; e0: number } {
  const core = new Core(suite, 0);
  const { session } = welcomed(suite, core, 'victim', 0);
  const e0 = core.machine.epoch;
  const oldWelcome = core.welcome('victim');
  for (const [i, other] of ['l2', 'l3'].entries()) {
    core.admit(other, 10 * (i + 1));
    const push = core.cut(10 * (i + 1), core.slotOf('victim'))!;
    session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 10 * (i + 1));
  }
  if (session.epoch !== e0 + 2) throw new Error(`set-up: leaf at ${session.epoch}, expected ${e0 + 2}`);
  return { core, session, oldWelcome, e0 };
}

const keyEpochs = (effects: readonly LeafSessionEffect[]): number[] => of(effects, 'key').map((k) => k.epoch);

test('a welcome replayed on the live link does not take the leaf back to the old epoch', (t) => {
  const { core, session, oldWelcome, e0 } = leafTwoEpochsOn();
  const effects = session.handle({ type: 'frame', frame: oldWelcome }, 100);
  t.deepEqual(keyEpochs(effects), [], 'no key event for the replayed epoch');
  t.is(session.epoch, e0 + 2);
  t.is(sealingEpoch(session, 100), e0 + 2, 'seals under the current key, not the replayed one');
  // The leaf still follows the group: the next batch applies.
  core.admit('l4', 110);
  const push = core.cut(110, core.slotOf('victim'))!;
  t.deepEqual(keyEpochs(session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 110)), [e0 + 3]);
});

test('a re-join answered with a replayed (or lagging) welcome keeps the newer key', (t) => {
  const { core, session, oldWelcome, e0 } = leafTwoEpochsOn();
  session.handle({ type: 'linkDown', error: new Error('failover') }, 100);
  const up = session.handle(
    { type: 'linkUp', link: { server: 'g/core/b', exportKeyingMaterial: () => undefined } },
    110,
  );
  t.true(
    of(up, 'send').some((s) => s.frameType === 'join'),
    're-joins on the new link',
  );
  const effects = session.handle({ type: 'frame', frame: oldWelcome }, 120);
  t.deepEqual(keyEpochs(effects), [], 'no key event for the replayed epoch');
  t.is(session.epoch, e0 + 2);
  t.true(session.welcomed, 'the admission is still ours: the link is usable');
  t.is(sealingEpoch(session, 120), e0 + 2);
  t.is(session.exportSecret(undefined, 'test', new Uint8Array(), 32, 120).epoch, e0 + 2);
  core.admit('l4', 130);
  const push = core.cut(130, core.slotOf('victim'))!;
  t.deepEqual(keyEpochs(session.handle({ type: 'frame', frame: wire('rekeyPush', push) }, 130)), [e0 + 3]);
});
