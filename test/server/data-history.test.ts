/**
 * A core server's data stream history (gossip-edge/data-history.ts): dense seqs, bounded
 * by count and bytes, capped pull replies that say where to resume, a new origin when the seqs
 * run out, and another origin's pull answered with this stream only.
 */
import test from 'ava';
import { DataHistory } from '../../gossip-edge/data-history.js';
import { MAX_PULL_ITEMS, MAX_PULL_REPLY_BYTES, MAX_STREAM_SEQ } from '../../gossip-edge/index.js';

const env = (k: number, bytes = 16): Uint8Array => new Uint8Array(bytes).fill(k & 0xff);

test('seqs are dense; a pull returns what is held from fromSeq on, and where the stream stands', (t) => {
  const h = new DataHistory({ maxItems: 8 });
  const { origin } = h.stream;
  t.true(origin >= 1);
  for (let k = 0; k < 5; k++) h.append(env(k));
  t.deepEqual(h.stream, { origin, next: 5 });
  const r = h.pull(origin, 2);
  t.deepEqual(
    r.items.map((i) => [i.seq, i.entry[0]]),
    [
      [2, 2],
      [3, 3],
      [4, 4],
    ],
  );
  t.is(r.next, 5);
  t.is(r.head, 5);
  t.deepEqual(h.pull(origin, 5).items, [], 'nothing missing');
  t.deepEqual(
    h.pull(origin, 99),
    { origin, next: 5, head: 5, items: [] },
    'a cursor past the head gets nothing',
  );
});

test('bounded by count and bytes: the oldest go first, and a pull for them resumes at the oldest held', (t) => {
  const h = new DataHistory({ maxItems: 4, maxBytes: 100 });
  const { origin } = h.stream;
  for (let k = 0; k < 6; k++) h.append(env(k));
  t.is(h.held, 4, 'count bound');
  const r = h.pull(origin, 0);
  t.deepEqual(
    r.items.map((i) => i.seq),
    [2, 3, 4, 5],
    'seqs 0 and 1 fell out: the reply starts at 2 (the cursor skips what is gone)',
  );
  h.append(env(6, 90)); // 90 + the newest held must stay ≤ 100 bytes
  t.is(h.held, 1, 'byte bound');
  t.deepEqual(
    h.pull(origin, 0).items.map((i) => i.seq),
    [6],
  );
});

test('a reply is capped in items and bytes; `next` says where the next pull resumes', (t) => {
  const h = new DataHistory({ maxItems: MAX_PULL_ITEMS * 2 });
  const { origin } = h.stream;
  for (let k = 0; k < MAX_PULL_ITEMS + 10; k++) h.append(env(k));
  const first = h.pull(origin, 0);
  t.is(first.items.length, MAX_PULL_ITEMS);
  t.is(first.next, MAX_PULL_ITEMS);
  t.is(first.head, MAX_PULL_ITEMS + 10);
  t.is(h.pull(origin, first.next).items.length, 10);

  const big = new DataHistory({ maxItems: 64 });
  const size = 64 * 1024;
  for (let k = 0; k < 10; k++) big.append(env(k, size));
  const r = big.pull(big.stream.origin, 0);
  t.is(r.items.length, Math.floor(MAX_PULL_REPLY_BYTES / size));
  t.is(r.next, r.items.length);
});

test('another origin gets this stream and no items; past MAX_STREAM_SEQ the stream starts over under a new origin', (t) => {
  let draws = 0;
  // The first two draws collide on purpose: a restart never keeps the previous origin.
  const h = new DataHistory({ maxItems: 4, randomInt: () => (draws++ < 2 ? 41 : 76) });
  t.is(h.stream.origin, 42);
  h.append(env(1));
  t.deepEqual(h.pull(7, 0), { origin: 42, next: 1, head: 1, items: [] });
  // Jump to the end of the seq space (white-box: the counter is private).
  (h as unknown as { next: number }).next = MAX_STREAM_SEQ;
  h.append(env(2));
  t.deepEqual(h.stream, { origin: 77, next: 0 });
  t.is(h.held, 0, 'the old stream history is gone with it');
});
