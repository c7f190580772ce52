/**
 * `crypto` suite: every CipherSuite operation on both backends, side by side with the raw
 * library calls they are built from (anchors), in one process. The fast backend's per-
 * operation choices (crypto/backend-fast.ts) and its AEAD size threshold (crypto/tuning.ts)
 * are read off these figures.
 */
import { createCipheriv, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import {
  createTunedFastSuite,
  loadSuite,
  SODIUM_AEAD_MAX_BYTES,
  type CipherSuite,
} from '../../crypto/index.js';
import {
  measureSideBySide,
  type BenchContext,
  type BenchResult,
  type BenchSuite,
  type ParamValue,
  type Timing,
} from '../harness.js';
import type { Chart } from '../svg.js';

const KIB = 1024;
const AEAD_SIZES = [64, KIB, 64 * KIB];

/** Deterministic filler so runs are comparable (content does not affect these algorithms' speed). */
function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 17 + 7) & 0xff);
}

type Impl = readonly [impl: string, fn: () => unknown];

interface Recorder {
  readonly results: BenchResult[];
  /** Measures the implementations of one operation side by side (interleaved runs). */
  compare(op: string, impls: readonly Impl[], params?: Record<string, ParamValue>, bytesPerOp?: number): void;
}

function recorder(ctx: BenchContext): Recorder {
  const results: BenchResult[] = [];
  return {
    results,
    compare(op, impls, params = {}, bytesPerOp) {
      const timings = measureSideBySide(
        impls.map(([, fn]) => fn),
        ctx.timing,
      );
      impls.forEach(([impl], i) => {
        const t = timings[i] as Timing;
        const metrics: Record<string, number> = {
          opsPerSec: Math.round(t.opsPerSec),
          nsPerOp: Math.round(t.nsPerOp),
          spreadPct: Number(t.spreadPct.toFixed(1)),
        };
        if (bytesPerOp !== undefined) metrics.MBps = Number(((t.opsPerSec * bytesPerOp) / 1e6).toFixed(1));
        results.push({ case: op, params: { impl, ...params }, metrics });
        const size = params.bytes === undefined ? '' : ` ${params.bytes} B`;
        ctx.log(
          `  ${(op + size).padEnd(28)} ${impl.padEnd(22)} ${Math.round(t.opsPerSec).toLocaleString('en-US').padStart(11)} ops/s  ±${t.spreadPct.toFixed(0)}%`,
        );
      });
    },
  };
}

function nodeAeadSeal(
  alg: 'chacha20-poly1305' | 'aes-256-gcm',
  key: Uint8Array,
  nonce: Uint8Array,
  pt: Uint8Array,
): Buffer {
  const c = createCipheriv(alg as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
  const body = c.update(pt);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  await sodium.ready;
  const fast = await loadSuite('fast');
  const noble = await loadSuite('noble');
  const r = recorder(ctx);
  const key = bytes(32, 1);
  const xnonce = bytes(24, 2);
  const nonce = bytes(12, 3);

  ctx.log('AEAD seal/open (XChaCha20-Poly1305 unless named)');
  for (const size of AEAD_SIZES) {
    const pt = bytes(size, 4);
    const p = { bytes: size };
    r.compare(
      'aead.seal',
      [
        ['fast', () => fast.aeadSeal(key, xnonce, pt)],
        ['noble', () => noble.aeadSeal(key, xnonce, pt)],
        [
          'libsodium xchacha',
          () => sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, null, null, xnonce, key),
        ],
        ['node chacha20-poly1305', () => nodeAeadSeal('chacha20-poly1305', key, nonce, pt)],
        ['node aes-256-gcm', () => nodeAeadSeal('aes-256-gcm', key, nonce, pt)],
      ],
      p,
      size,
    );
    const sealed = fast.aeadSeal(key, xnonce, pt);
    r.compare(
      'aead.open',
      [
        ['fast', () => fast.aeadOpen(key, xnonce, sealed)],
        ['noble', () => noble.aeadOpen(key, xnonce, sealed)],
      ],
      p,
      size,
    );
  }

  ctx.log(
    `AEAD engine crossover (fast backend pinned to each engine; threshold now ${SODIUM_AEAD_MAX_BYTES} B)`,
  );
  const viaSodium = await createTunedFastSuite({ sodiumAeadMaxBytes: Number.POSITIVE_INFINITY });
  const viaNode = await createTunedFastSuite({ sodiumAeadMaxBytes: -1 });
  const crossoverSizes = ctx.quick
    ? [2 * KIB, 8 * KIB]
    : ctx.full
      ? [512, KIB, 2 * KIB, 3 * KIB, 4 * KIB, 6 * KIB, 8 * KIB, 16 * KIB]
      : [KIB, 2 * KIB, 4 * KIB, 8 * KIB, 16 * KIB];
  for (const size of crossoverSizes) {
    const pt = bytes(size, 5);
    r.compare(
      'aead.crossover',
      [
        ['libsodium engine', () => viaSodium.aeadSeal(key, xnonce, pt)],
        ['node+hchacha engine', () => viaNode.aeadSeal(key, xnonce, pt)],
      ],
      { bytes: size },
      size,
    );
  }

  ctx.log('Ed25519 / X25519 (keys reused, as a long-lived identity would be)');
  const seed = bytes(32, 6);
  const message = bytes(100, 7);
  const publicKey = fast.ed25519PublicKey(seed);
  const signature = fast.ed25519Sign(seed, message);
  const sodiumPair = sodium.crypto_sign_seed_keypair(seed);
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) };
  const nodePrivate: KeyObject = createPrivateKey({ key: { ...jwk, d: b64url(seed) }, format: 'jwk' });
  const nodePublic: KeyObject = createPublicKey({ key: jwk, format: 'jwk' });
  r.compare('ed25519.publicKey', [
    ['fast', () => fast.ed25519PublicKey(seed)],
    ['noble', () => noble.ed25519PublicKey(seed)],
  ]);
  r.compare(
    'ed25519.sign',
    [
      ['fast', () => fast.ed25519Sign(seed, message)],
      ['noble', () => noble.ed25519Sign(seed, message)],
      ['libsodium', () => sodium.crypto_sign_detached(message, sodiumPair.privateKey)],
      ['node (KeyObject)', () => sign(null, message, nodePrivate)],
    ],
    { bytes: 100 },
  );
  r.compare(
    'ed25519.verify',
    [
      ['fast', () => fast.ed25519Verify(publicKey, message, signature)],
      ['noble', () => noble.ed25519Verify(publicKey, message, signature)],
      ['libsodium', () => sodium.crypto_sign_verify_detached(signature, message, publicKey)],
      ['node (KeyObject)', () => verify(null, message, nodePublic, signature)],
    ],
    { bytes: 100 },
  );

  const xSecret = bytes(32, 8);
  const xPeer = fast.x25519PublicKey(bytes(32, 9));
  r.compare('x25519.publicKey', [
    ['fast', () => fast.x25519PublicKey(xSecret)],
    ['noble', () => noble.x25519PublicKey(xSecret)],
    ['libsodium', () => sodium.crypto_scalarmult_base(xSecret)],
  ]);
  // "new peer": a peer key never seen before on every call (its import is not cached).
  let counter = 0;
  const freshPeers = Array.from({ length: 4096 }, (_, i) => fast.x25519PublicKey(bytes(32, 100 + i)));
  r.compare('x25519', [
    ['fast', () => fast.x25519(xSecret, xPeer)],
    ['fast (new peer)', () => fast.x25519(xSecret, freshPeers[counter++ % freshPeers.length] as Uint8Array)],
    ['noble', () => noble.x25519(xSecret, xPeer)],
    ['libsodium', () => sodium.crypto_scalarmult(xSecret, xPeer)],
  ]);

  ctx.log('KDF, MAC, hash, key wrap, randomness');
  const ikm = bytes(32, 10);
  const salt = bytes(32, 11);
  const info = bytes(16, 12);
  const data64 = bytes(64, 13);
  const kek = bytes(32, 14);
  const keyToWrap = bytes(32, 15);
  const wrapped = fast.wrapKey(kek, keyToWrap);
  const both = (f: (s: CipherSuite) => unknown): Impl[] => [
    ['fast', () => f(fast)],
    ['noble', () => f(noble)],
  ];
  r.compare(
    'hkdf-sha256→32',
    both((s) => s.hkdf(ikm, salt, info, 32)),
  );
  r.compare(
    'hmac-sha256',
    both((s) => s.hmacSha256(ikm, data64)),
    { bytes: 64 },
    64,
  );
  r.compare(
    'sha256',
    both((s) => s.sha256(data64)),
    { bytes: 64 },
    64,
  );
  r.compare(
    'aes-kw.wrap',
    both((s) => s.wrapKey(kek, keyToWrap)),
    { bytes: 32 },
  );
  r.compare(
    'aes-kw.unwrap',
    both((s) => s.unwrapKey(kek, wrapped)),
    { bytes: 32 },
  );
  r.compare('random(24)', [
    ...both((s) => s.randomBytes(24)),
    ['libsodium', () => sodium.randombytes_buf(24)],
  ]);
  return r.results;
}

function label(res: BenchResult): string {
  return res.params.bytes === undefined || !String(res.case).startsWith('aead')
    ? res.case
    : `${res.case} ${shortBytes(Number(res.params.bytes))}`;
}

function shortBytes(n: number): string {
  return n >= KIB && n % KIB === 0 ? `${n / KIB} KiB` : `${n} B`;
}

function charts(results: readonly BenchResult[]): Chart[] {
  const groups = new Map<string, Array<{ series: string; value: number }>>();
  for (const res of results) {
    if (res.case === 'aead.crossover') continue;
    const key = label(res);
    const list = groups.get(key) ?? [];
    list.push({ series: String(res.params.impl), value: res.metrics.opsPerSec ?? 0 });
    groups.set(key, list);
  }
  const throughput = new Map<string, Array<{ x: number; y: number }>>();
  for (const res of results) {
    if (res.case !== 'aead.seal' && res.case !== 'aead.crossover') continue;
    const name = res.case === 'aead.seal' ? String(res.params.impl) : `fast via ${String(res.params.impl)}`;
    const list = throughput.get(name) ?? [];
    list.push({ x: Number(res.params.bytes), y: res.metrics.MBps ?? 0 });
    throughput.set(name, list);
  }
  return [
    {
      kind: 'bar',
      title: 'Cipher suite operations per second, one core (higher is better)',
      unit: 'ops/s',
      log: true,
      groups: [...groups].map(([labelText, bars]) => ({ label: labelText, bars })),
    },
    {
      kind: 'line',
      title: 'AEAD seal throughput vs message size',
      xLabel: 'message size (bytes)',
      yLabel: 'MB/s',
      logX: true,
      logY: true,
      series: [...throughput].map(([name, points]) => ({ name, points })),
    },
  ];
}

const suite: BenchSuite = {
  name: 'crypto',
  description: 'CipherSuite operations: fast vs noble backends with raw library anchors',
  run,
  charts,
};
export default suite;
