import test from 'ava';
import { Reader, Writer, DecodeError } from '../wire/index.js';

test('codec: varuint round-trips and rejects non-canonical encodings', (t) => {
  for (const v of [0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const bytes = new Writer().varuint(v).finish();
    const r = new Reader(bytes);
    t.is(r.varuint(), v);
    r.end();
  }
  const err = t.throws(() => new Reader(Uint8Array.of(0x80, 0x00)).varuint(), { instanceOf: DecodeError });
  t.is(err?.code, 'non-canonical');
});
