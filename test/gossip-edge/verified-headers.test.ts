import test from 'ava';
import { VerifiedHeaders } from '../../gossip-edge/verified-headers.js';

const b = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

test('a hit needs the same signer, header and signature; the oldest entry is forgotten first', (t) => {
  const v = new VerifiedHeaders(2);
  const signer = b(1, 2);
  const header = b(3, 4, 5);
  const sig = b(6, 7);
  t.false(v.has(signer, header, sig));
  v.add(signer, header, sig);
  t.true(v.has(signer, header, sig));
  t.false(v.has(b(1, 3), header, sig), 'another signer');
  t.false(v.has(signer, b(3, 4, 6), sig), 'another header');
  t.false(v.has(signer, b(3, 4), sig), 'a shorter header');
  t.false(v.has(signer, header, b(6, 8)), 'another signature');
  // Entries are copies: the caller may reuse its buffers.
  header[0] = 9;
  t.false(v.has(signer, header, sig));
  t.true(v.has(signer, b(3, 4, 5), sig));
  v.add(signer, b(10), sig);
  v.add(signer, b(11), sig);
  t.false(v.has(signer, b(3, 4, 5), sig), 'evicted by capacity');
  t.true(v.has(signer, b(11), sig));
});
