/**
 * AddressClaims (sans-IO): when traffic may move a peer's address. The held address wins while it
 * answers; a claimed address that never echoes its nonce (a spoofed source) never gets traffic;
 * checks are bounded in number and in probes.
 */
import test from 'ava';
import { AddressBook, AddressClaims, CLAIM_PERIODS, MAX_CLAIM_CHECKS } from '../../gossip-edge/index.js';

function setup(): { book: AddressBook; claims: AddressClaims } {
  const book = new AddressBook();
  let n = 0;
  const claims = new AddressClaims(book, () => Uint8Array.of(++n, 0, 0, 0));
  return { book, claims };
}

/** Runs periods from..to (inclusive) and returns the probes they sent. */
function run(claims: AddressClaims, from: number, to: number): number {
  let probes = 0;
  for (let p = from; p <= to; p++) probes += claims.tick(p).length;
  return probes;
}

test('a claim on an unknown peer or a hinted one is taken; seeds replace anything; hints fill gaps only', (t) => {
  const { book, claims } = setup();
  t.deepEqual(claims.observe(1, 'a:1', 0), []);
  t.is(book.peek(1), 'a:1');
  book.learn(2, 'h:2', 'hint');
  book.learn(2, 'h:3', 'hint');
  t.is(book.peek(2), 'h:2', 'a hint never replaces');
  t.deepEqual(claims.observe(2, 'd:2', 0), [], 'traffic replaces a hint');
  t.is(book.peek(2), 'd:2');
  book.learn(2, 's:2', 'seed');
  t.is(book.peek(2), 's:2', 'our server replaces a member-reported address');
});

test('the held address answers: the claim is refused after CLAIM_PERIODS', (t) => {
  const { book, claims } = setup();
  book.learn(7, 'held:1', 'seed');
  const probes = claims.observe(7, 'evil:1', 10);
  t.deepEqual(
    probes.map((p) => p.to),
    ['held:1', 'evil:1'],
  );
  claims.answered(7, 'evil:1', probes[1]!.nonce);
  claims.answered(7, 'held:1', probes[0]!.nonce);
  t.deepEqual(claims.observe(7, 'evil:1', 11), [], 'one check per peer at a time');
  run(claims, 11, 10 + CLAIM_PERIODS);
  t.is(book.peek(7), 'held:1');
  t.like(claims.stats, { started: 1, refused: 1, rebinds: 0 });
});

test('a claimed address that never answers (spoofed source) gets nothing, even if the held one is silent', (t) => {
  const { book, claims } = setup();
  book.learn(7, 'held:1', 'seed');
  const probes = claims.observe(7, 'victim-of-reflection:1', 0);
  claims.answered(7, 'held:1', probes[1]!.nonce); // the wrong nonce from the wrong place
  const resent = run(claims, 1, CLAIM_PERIODS);
  t.is(resent, 2, 'probes are sent once more, no more');
  t.is(book.peek(7), 'held:1');
  t.like(claims.stats, { unproven: 1, rebinds: 0 });
});

test('the held address silent, the new one answering: the peer moved (NAT rebinding)', (t) => {
  const { book, claims } = setup();
  book.learn(7, 'old:1', 'seed');
  const probes = claims.observe(7, 'new:1', 0);
  claims.answered(7, 'new:1', probes[1]!.nonce);
  run(claims, 1, CLAIM_PERIODS - 1);
  t.is(book.peek(7), 'old:1', 'not before the held address had its time to answer');
  run(claims, CLAIM_PERIODS, CLAIM_PERIODS);
  t.is(book.peek(7), 'new:1');
  t.is(claims.stats.rebinds, 1);
  t.deepEqual(claims.observe(7, 'new:1', CLAIM_PERIODS + 1), [], 'held now');
});

test('checks are bounded: a flood of claims on many peers runs at most MAX_CLAIM_CHECKS', (t) => {
  const { book, claims } = setup();
  let probes = 0;
  for (let id = 0; id < 10 * MAX_CLAIM_CHECKS; id++) {
    book.learn(id, `held:${id}`, 'seed');
    for (let k = 0; k < 5; k++) probes += claims.observe(id, `evil:${k}`, 0).length;
  }
  t.is(claims.running, MAX_CLAIM_CHECKS);
  t.is(probes, 2 * MAX_CLAIM_CHECKS);
  t.true(claims.stats.ignored > 0);
});
