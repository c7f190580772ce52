/** Sealed application data: epochs, replay, tampering, signatures, the sender LRU. */
import test from 'ava';
import fc from 'fast-check';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import {
  DataEnvelopeError,
  DataKeyring,
  DataOpener,
  DataSealer,
  RetiredKeyError,
  ReplayGuard,
  ReplayWindow,
  decodeDataEnvelope,
  deriveDataKey,
  type DataErrorReason,
} from '../../gossip-edge/index.js';

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);

function ring(suite: CipherSuite, epochs: number[], previous = 2): DataKeyring {
  const r = new DataKeyring(suite, { now: Date.now, previousEpochs: previous });
  for (const e of epochs) r.install(e, key(e + 1));
  return r;
}

function reason(fn: () => unknown): DataErrorReason | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof DataEnvelopeError) return e.reason;
    throw e;
  }
}

test('seal → open round trip; header fields authenticated; replays refused', async (t) => {
  const suite = await loadSuite();
  const sealer = new DataSealer(suite, ring(suite, [5]), { sender: 42 });
  const opener = new DataOpener(suite, ring(suite, [5]));
  const env = sealer.seal(new TextEncoder().encode('hello'));
  const m = opener.open(env);
  t.deepEqual(
    [m.epoch, m.sender, m.seq, new TextDecoder().decode(m.data), m.signed],
    [5, 42, 0, 'hello', false],
  );
  t.is(
    reason(() => opener.open(env)),
    'replay',
  );
  // Flip each byte in turn: never accepted, always a typed reason.
  const env2 = sealer.seal(new Uint8Array(100).fill(9));
  for (let i = 0; i < env2.length; i++) {
    const bad = env2.slice();
    bad[i]! ^= 0x10;
    const r = reason(() => opener.open(bad));
    t.truthy(r, `flip at ${i} accepted`);
  }
  t.is(opener.open(env2).seq, 1); // the flips did not advance the replay window
  t.is(
    reason(() => opener.open(new Uint8Array(3))),
    'malformed',
  );
});

test('a window of previous epochs stays readable; older and future epochs are unknown', async (t) => {
  const suite = await loadSuite();
  const senderRing = ring(suite, [1]);
  const sealer = new DataSealer(suite, senderRing, { sender: 1 });
  const old = [sealer.seal(Uint8Array.of(1))];
  for (const e of [2, 3, 4]) {
    senderRing.install(e, key(e + 1));
    old.push(sealer.seal(Uint8Array.of(e)));
  }
  const receiver = ring(suite, [1, 2, 3, 4], 2); // keeps 2, 3, 4
  const opener = new DataOpener(suite, receiver);
  t.is(
    reason(() => opener.open(old[0]!)),
    'unknown-epoch',
  );
  t.deepEqual(
    old.slice(1).map((e) => opener.open(e).epoch),
    [2, 3, 4],
  );
  senderRing.install(5, key(6));
  t.is(
    reason(() => opener.open(sealer.seal(Uint8Array.of(5)))),
    'unknown-epoch',
  );
  receiver.clear();
  t.is(receiver.current, undefined);
});

test('a retired epoch stays readable only for its grace period, however few batches follow', async (t) => {
  const suite = await loadSuite();
  let now = 1_000;
  const clock = (): number => now;
  // An insider evicted by epoch 8 still holds epoch 7's key and seals under it.
  const insiderRing = new DataKeyring(suite, { now: clock });
  insiderRing.install(7, key(8));
  const insider = new DataSealer(suite, insiderRing, { sender: 9 });
  const receiver = new DataKeyring(suite, { now: clock, retiredGraceMs: 2_000 });
  receiver.install(7, key(8));
  const opener = new DataOpener(suite, receiver);
  const early = insider.seal(Uint8Array.of(1));
  now += 5_000; // epoch 7 current for a while: no grace runs yet
  t.is(opener.open(early).epoch, 7);
  receiver.install(8, key(9)); // epoch 7 retired at t = 6,000
  now += 1_999;
  t.is(opener.open(insider.seal(Uint8Array.of(2))).epoch, 7, 'a late message within the grace period');
  now += 2;
  t.is(
    reason(() => opener.open(insider.seal(Uint8Array.of(3)))),
    'unknown-epoch',
    'past the grace period, with no batch since, the old key is gone',
  );
  t.is(receiver.key(7), undefined);
  t.truthy(receiver.key(8), 'the current epoch never expires');
  // A retired epoch installed late (catch-up order) is retired from its install on.
  receiver.install(6, key(7));
  t.truthy(receiver.key(6));
  now += 2_001;
  t.is(receiver.key(6), undefined);
});

test('a sender that saw a newer epoch seals under its old key only within the grace window', async (t) => {
  const suite = await loadSuite();
  let now = 1_000;
  const ring = new DataKeyring(suite, { now: () => now, retiredGraceMs: 2_000 });
  ring.install(7, key(8));
  const sealer = new DataSealer(suite, ring, { sender: 9 });
  ring.noteNewer(7); // not newer: nothing retires
  ring.noteNewer(3);
  now += 60_000;
  sealer.seal(Uint8Array.of(1)); // the newest key, no newer one announced: never expires
  ring.noteNewer(9); // a signed header of epoch 9 arrived; we cannot apply it yet (a gap)
  now += 2_000;
  t.is(decodeDataEnvelope(sealer.seal(Uint8Array.of(2))).header.epoch, 7, 'within the grace');
  now += 1;
  const seq = sealer.seq;
  const e = t.throws(() => sealer.seal(Uint8Array.of(3)), { instanceOf: RetiredKeyError });
  t.is(e!.epoch, 7);
  t.is(sealer.seq, seq, 'a refused seal uses no sequence number');
  ring.install(9, key(10)); // caught up: sealing works again, under the new epoch
  t.is(decodeDataEnvelope(sealer.seal(Uint8Array.of(4))).header.epoch, 9);
});

test('the count bound holds within the grace period', async (t) => {
  const suite = await loadSuite();
  const r = new DataKeyring(suite, { previousEpochs: 3, now: () => 0 });
  for (let e = 1; e <= 10; e++) r.install(e, key(e));
  t.deepEqual(
    [6, 7, 8, 9, 10].map((e) => r.key(e) !== undefined),
    [false, true, true, true, true],
  );
});

test('a wrong key for the epoch fails authentication', async (t) => {
  const suite = await loadSuite();
  const sealer = new DataSealer(suite, ring(suite, [7]), { sender: 3 });
  const wrong = new DataKeyring(suite, { now: Date.now });
  wrong.install(7, key(99));
  t.is(
    reason(() => new DataOpener(suite, wrong).open(sealer.seal(Uint8Array.of(1)))),
    'auth-failed',
  );
  t.notDeepEqual(deriveDataKey(suite, key(1), 1), deriveDataKey(suite, key(1), 2));
});

test('sender signatures: verified, required when asked, unknown signer and forgery refused', async (t) => {
  const suite = await loadSuite();
  const seed = new Uint8Array(32).fill(4);
  const pub = suite.ed25519PublicKey(seed);
  const signed = new DataSealer(suite, ring(suite, [1]), { sender: 9, signingSeed: seed });
  const unsigned = new DataSealer(suite, ring(suite, [1]), { sender: 9, firstSeq: 100 });
  const strict = new DataOpener(suite, ring(suite, [1]), {
    senderKey: (s) => (s === 9 ? pub : undefined),
    requireSignature: true,
  });
  const env = signed.seal(Uint8Array.of(1, 2));
  t.true(strict.open(env).signed);
  t.is(
    reason(() => strict.open(unsigned.seal(Uint8Array.of(1)))),
    'bad-signature',
  );
  const other = new DataSealer(suite, ring(suite, [1]), { sender: 9, signingSeed: key(5), firstSeq: 50 });
  t.is(
    reason(() => strict.open(other.seal(Uint8Array.of(1)))),
    'bad-signature',
  );
  const stranger = new DataSealer(suite, ring(suite, [1]), { sender: 10, signingSeed: seed });
  t.is(
    reason(() => strict.open(stranger.seal(Uint8Array.of(1)))),
    'bad-signature',
  );
  t.is(decodeDataEnvelope(env).signature?.length, 64);
});

test('replay window matches a set model under any arrival order', (t) => {
  fc.assert(
    fc.property(fc.array(fc.nat(3000), { maxLength: 300 }), (seqs) => {
      const w = new ReplayWindow(256);
      const seen = new Set<number>();
      let highest = -1;
      for (const s of seqs) {
        const expected = !seen.has(s) && s > highest - 256;
        t.is(w.accepts(s), expected);
        if (expected) {
          w.commit(s);
          seen.add(s);
          highest = Math.max(highest, s);
        }
      }
    }),
    { numRuns: 200 },
  );
});

test('replay guard keeps at most maxSenders windows, least recently heard dropped', (t) => {
  const g = new ReplayGuard(3, 64);
  for (const s of [1, 2, 3]) g.commit(s, 0);
  g.commit(1, 1); // 1 is now the most recent
  g.commit(4, 0); // evicts 2
  t.is(g.senders, 3);
  t.false(g.accepts(1, 0));
  t.false(g.accepts(3, 0));
  t.true(g.accepts(2, 0)); // forgotten: the documented cost of the bound
});
