/**
 * The key exporter (gossip-edge/exporter.ts): known answers recomputed here with node:crypto's
 * own HKDF from the construction as documented, on both backends; bounds; unambiguous fields;
 * and the keyring's window (newest, retired within grace, forgotten, before admission, not yet).
 */
import { hkdfSync } from 'node:crypto';
import test from 'ava';
import { BACKENDS, loadSuite } from '../../crypto/index.js';
import {
  DataKeyring,
  ExportUnavailableError,
  exportFromKeyring,
  exportGroupSecret,
  type ExportUnavailableReason,
} from '../../gossip-edge/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const GROUP_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

/** The construction exactly as the module's doc comment (and the README) states it. */
function reference(
  groupKey: Uint8Array,
  group: Uint8Array,
  epoch: number | bigint,
  label: string,
  context: Uint8Array,
  length: number,
): string {
  const exporterKey = Buffer.from(
    hkdfSync('sha256', groupKey, new Uint8Array(0), enc('keyglass exporter v1'), 32),
  );
  const e = Buffer.alloc(8);
  e.writeBigUInt64BE(BigInt(epoch));
  const c = Buffer.alloc(2);
  c.writeUInt16BE(context.length);
  const l = Buffer.alloc(2);
  l.writeUInt16BE(length);
  const info = Buffer.concat([
    enc('keyglass export v1'),
    Uint8Array.of(group.length),
    group,
    e,
    Uint8Array.of(label.length),
    enc(label),
    c,
    context,
    l,
  ]);
  return hex(new Uint8Array(hkdfSync('sha256', exporterKey, new Uint8Array(0), info, length)));
}

const VECTORS = [
  {
    group: enc('g'),
    epoch: 7,
    label: 'keyglass test',
    context: enc('file-1'),
    length: 32,
    expected: '11668ae765e3e2dd1d5772cf6f58e25929e262778cf15a5dfd8a3f7378e35863',
  },
  {
    group: enc('group-a'),
    epoch: 2 ** 40,
    label: 'EXPORTER media srtp',
    context: new Uint8Array(0),
    length: 60,
    expected:
      '6386ae1736278183e219f7b9268ba61302f3c728ccaefa77d388fe4d34932d5fbd51d53bad2f4cf0f1e5b272826748fa81b5a699ebc374c38b6d8eca',
  },
];

for (const backend of BACKENDS) {
  test(`known answers (${backend}): the documented construction, recomputed with node:crypto`, async (t) => {
    const suite = await loadSuite(backend);
    for (const v of VECTORS) {
      const got = hex(exportGroupSecret(suite, GROUP_KEY, v, v.label, v.context, v.length));
      t.is(got, v.expected);
      t.is(got, reference(GROUP_KEY, v.group, v.epoch, v.label, v.context, v.length));
    }
    // Random inputs agree with the reference too (not only the two fixed vectors).
    for (let i = 0; i < 20; i++) {
      const groupKey = suite.randomBytes(32);
      const group = suite.randomBytes(1 + (i % 64));
      const context = suite.randomBytes((i * 37) % 513);
      const label = `app ${i} ~!`;
      const length = 16 + ((i * 101) % 1009);
      t.is(
        hex(exportGroupSecret(suite, groupKey, { group, epoch: i * 1000 }, label, context, length)),
        reference(groupKey, group, i * 1000, label, context, length),
      );
    }
  });
}

test('every bound field changes the secret; fields cannot slide into each other', async (t) => {
  const suite = await loadSuite();
  const base = { group: enc('g'), epoch: 5 };
  const x = (scope: typeof base, label: string, context: Uint8Array, length = 32): string =>
    hex(exportGroupSecret(suite, GROUP_KEY, scope, label, context, length));
  const all = [
    x(base, 'ab', enc('c')),
    x(base, 'a', enc('bc')), // the same bytes split differently between label and context
    x(base, 'ab', enc('d')),
    x(base, 'ax', enc('c')),
    x({ ...base, epoch: 6 }, 'ab', enc('c')),
    x({ ...base, group: enc('h') }, 'ab', enc('c')),
    x({ ...base, group: enc('ga') }, 'b', enc('c')), // the same bytes split between group and label
    hex(exportGroupSecret(suite, suite.randomBytes(32), base, 'ab', enc('c'), 32)),
  ];
  t.is(new Set(all).size, all.length);
  // The length is bound: a shorter export is not a prefix of a longer one.
  t.false(x(base, 'ab', enc('c'), 64).startsWith(x(base, 'ab', enc('c'), 32)));
  // Exported secrets are not the data key of the epoch (another domain).
  t.not(x(base, 'ab', enc('c')), hex(suite.hkdf(GROUP_KEY, new Uint8Array(0), enc('keyglass data'), 32)));
});

test('bounds: label, context, length, group and epoch are checked before any key is used', async (t) => {
  const suite = await loadSuite();
  const scope = { group: enc('g'), epoch: 1 };
  const bad = (
    label: string,
    context: Uint8Array = new Uint8Array(0),
    length = 32,
    s: { group: Uint8Array; epoch: number } = scope,
  ): void => {
    t.throws(() => exportGroupSecret(suite, GROUP_KEY, s, label, context, length), {
      instanceOf: RangeError,
    });
  };
  bad('');
  bad('x'.repeat(65));
  bad('tab\there');
  bad('caf\u00e9'); // not ASCII: one spelling per label
  bad('new\nline');
  bad('ok', new Uint8Array(513));
  bad('ok', new Uint8Array(0), 15);
  bad('ok', new Uint8Array(0), 1025);
  bad('ok', new Uint8Array(0), 32.5);
  bad('ok', new Uint8Array(0), 32, { group: new Uint8Array(0), epoch: 1 });
  bad('ok', new Uint8Array(0), 32, { group: new Uint8Array(65), epoch: 1 });
  bad('ok', new Uint8Array(0), 32, { group: enc('g'), epoch: -1 });
  bad('ok', new Uint8Array(0), 32, { group: enc('g'), epoch: 2 ** 53 });
  t.throws(() => exportGroupSecret(suite, GROUP_KEY, scope, 'ok', 'text' as unknown as Uint8Array, 32), {
    instanceOf: RangeError,
  });
  // The largest of everything fits the suite's HKDF info bound.
  const max = exportGroupSecret(
    suite,
    GROUP_KEY,
    { group: new Uint8Array(64), epoch: Number.MAX_SAFE_INTEGER },
    '~'.repeat(64),
    new Uint8Array(512),
    1024,
  );
  t.is(max.length, 1024);
  t.is(exportGroupSecret(suite, GROUP_KEY, scope, ' ', new Uint8Array(0), 16).length, 16);
});

function reasonOf(fn: () => unknown): ExportUnavailableReason | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof ExportUnavailableError) return e.reason;
    throw e;
  }
}

test('from a keyring: newest, retired within grace, forgotten after it, before admission, not yet', async (t) => {
  const suite = await loadSuite();
  let now = 1_000;
  const ring = new DataKeyring(suite, { now: () => now, previousEpochs: 2, retiredGraceMs: 500 });
  const group = enc('g');
  const key = (e: number): Uint8Array => new Uint8Array(32).fill(e);
  const held = { group, admittedEpoch: 3 };
  const ctx = enc('stream 9');
  const exp = (epoch: number | undefined) => exportFromKeyring(suite, ring, held, epoch, 'app', ctx, 32);
  const direct = (e: number): string =>
    hex(exportGroupSecret(suite, key(e), { group, epoch: e }, 'app', ctx, 32));

  t.is(
    reasonOf(() => exp(undefined)),
    'no-key',
  );
  t.is(
    reasonOf(() => exportFromKeyring(suite, undefined, held, 3, 'app', ctx, 32)),
    'no-key',
  );
  ring.install(3, key(3));
  const first = exp(undefined);
  t.is(first.epoch, 3);
  t.is(hex(first.secret), direct(3), 'the keyring path is the documented derivation');
  ring.install(4, key(4));
  t.deepEqual([exp(undefined).epoch, hex(exp(undefined).secret)], [4, direct(4)]);
  t.is(hex(exp(3).secret), direct(3), 'a retired epoch within its grace');
  t.is(
    reasonOf(() => exp(2)),
    'before-admission',
  );
  t.is(
    reasonOf(() => exp(5)),
    'not-yet',
  );
  // Misuse is a RangeError whatever the keys.
  t.throws(() => exportFromKeyring(suite, ring, held, 4, '', ctx, 32), { instanceOf: RangeError });
  t.throws(() => exportFromKeyring(suite, ring, held, -1, 'app', ctx, 32), { instanceOf: RangeError });

  now += 501;
  t.is(
    reasonOf(() => exp(3)),
    'retired',
    'grace over: forgotten',
  );
  t.is(exp(undefined).epoch, 4);
  // A signed header announced epoch 5 we do not hold: our newest is retired; after its grace
  // nothing is exported for new use (a member evicted by epoch 5 holds epoch 4's key).
  ring.noteNewer(5);
  t.is(exp(undefined).epoch, 4);
  now += 501;
  t.is(
    reasonOf(() => exp(undefined)),
    'retired',
  );
  ring.install(5, key(5));
  ring.install(6, key(6));
  ring.install(7, key(7));
  ring.install(8, key(8));
  t.is(
    reasonOf(() => exp(5)),
    'retired',
    'beyond previousEpochs',
  );
  t.is(hex(exp(6).secret), direct(6));
  ring.clear();
  t.is(
    reasonOf(() => exp(undefined)),
    'no-key',
  );
  t.is(
    reasonOf(() => exp(8)),
    'no-key',
  );
});

test('returned secrets are fresh buffers: wiping one does not touch the next', async (t) => {
  const suite = await loadSuite();
  const ring = new DataKeyring(suite, { now: Date.now });
  ring.install(1, GROUP_KEY);
  const held = { group: enc('g'), admittedEpoch: 1 };
  const a = exportFromKeyring(suite, ring, held, undefined, 'app', new Uint8Array(0), 32);
  const copy = hex(a.secret);
  a.secret.fill(0);
  const b = exportFromKeyring(suite, ring, held, undefined, 'app', new Uint8Array(0), 32);
  t.is(hex(b.secret), copy);
  t.not(a.secret.buffer, b.secret.buffer);
});
