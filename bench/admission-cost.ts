/**
 * Where a leaf admission's server CPU goes, component by component, measured in one process
 * with process.cpuUsage (CPU time, so other load on the machine inflates it far less than wall
 * time). Not a suite: `node dist/bench/admission-cost.js [--leaves 100,1000,10000] [--handshakes N]`.
 *
 *   tls     TLS 1.3 mutual-auth handshakes accepted by a TlsTransport (leaf port settings) from a
 *           client process dialling N leaves; the server's CPU per link, with `identify` doing
 *           (a) nothing but read the SAN URI, (b) the full PeerVerifier with its path cache off,
 *           (c) the same with the cache warm (the same leaves reconnecting);
 *   verify  PeerVerifier.verify of a leaf certificate alone, cache off and warm;
 *   store   LeafStore.commit of admissions and a batch cut every `perBatch` of them on a
 *           population of --leaves (LKH batch apply, encryption at rest, write, fsync), per
 *           admission, with the number of fsyncs.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { loadSuite } from '../crypto/index.js';
import {
  MutualTls,
  PeerVerifier,
  credentialsFromPem,
  parseCertificate,
  toPem,
  type CertInfo,
  type Credentials,
} from '../auth/index.js';
import {
  buildCertificate,
  generateKeyPair,
  CA_KEY_USAGE,
  MEMBER_EKU,
  MEMBER_KEY_USAGE,
} from '../ca-tools/index.js';
import { TlsTransport } from '../net/index.js';
import { LeafStateMachine, LeafStore, type LeafCommand } from '../leaf-plane/index.js';
import { FileStorage } from '../server/index.js';

const CHILD_ENV = 'KG_ADMISSION_COST_CLIENT';
const GROUP = 'bench';
const HOUR = 3_600_000;
const leafExpect = { roles: ['leaf'] as const, peerSide: 'client' as const };

interface Pki {
  readonly ca: CertInfo;
  readonly caPem: string;
  readonly server: Credentials;
  readonly leaves: { certPem: string; keyPem: string }[];
}

async function issue(
  name: string,
  role: 'core' | 'leaf',
  ca: { der: Uint8Array; key: KeyObject },
): Promise<{ certPem: string; keyPem: string }> {
  const kp = generateKeyPair('ed25519');
  const now = Date.now();
  const der = await buildCertificate(
    {
      commonName: name,
      publicKey: kp.publicKey,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 24 * HOUR),
      isCa: false,
      keyUsage: MEMBER_KEY_USAGE,
      extKeyUsage: MEMBER_EKU,
      sanUris: [`keyglass://${GROUP}/${role}/${name}`],
      hosts: ['127.0.0.1'],
    },
    { certificateDer: ca.der, privateKey: ca.key },
  );
  return {
    certPem: toPem('CERTIFICATE', der),
    keyPem: kp.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

async function makePki(leaves: number): Promise<Pki> {
  const kp = generateKeyPair('ed25519');
  const now = Date.now();
  const der = await buildCertificate(
    {
      commonName: 'Bench CA',
      publicKey: kp.publicKey,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 48 * HOUR),
      isCa: true,
      keyUsage: CA_KEY_USAGE,
      extKeyUsage: [],
      sanUris: [],
      hosts: [],
    },
    { certificateDer: undefined, privateKey: kp.privateKey },
  );
  const ca = { der, key: kp.privateKey };
  const s = await issue('core-1', 'core', ca);
  const out: { certPem: string; keyPem: string }[] = [];
  for (let i = 0; i < leaves; i++) out.push(await issue(`leaf-${i}`, 'leaf', ca));
  return {
    ca: parseCertificate(der),
    caPem: toPem('CERTIFICATE', der),
    server: credentialsFromPem(s.certPem, s.keyPem),
    leaves: out,
  };
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// ── tls: server side here, clients in a child process ───────────────────────────────────────────

interface ClientSpec {
  readonly port: number;
  readonly caPem: string;
  readonly leaves: { certPem: string; keyPem: string }[];
  readonly concurrency: number;
}

async function clientMain(spec: ClientSpec): Promise<void> {
  const anchors = [parseCertificate(new X509Certificate(spec.caPem).raw)];
  const transports = spec.leaves.map((l) => {
    const creds = credentialsFromPem(l.certPem, l.keyPem);
    const mtls = new MutualTls(creds, new PeerVerifier({ anchors, group: GROUP }));
    return new TlsTransport({
      local: `${GROUP}/leaf/${creds.identity!.name}`,
      tls: mtls.contextOptions(),
      identify: () => `${GROUP}/core/core-1`, // the client's checks are not what we measure
      maxLinks: 2,
    });
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      while (next < transports.length) {
        const t = transports[next++]!;
        await t.connect('127.0.0.1', spec.port);
        await t.close();
      }
    }),
  );
  process.send!('done');
}

async function tlsCase(
  pki: Pki,
  label: string,
  identify: ((cert: X509Certificate) => string | Error) | undefined,
  rounds: number,
): Promise<void> {
  const verifier = new PeerVerifier({ anchors: [pki.ca], group: GROUP, pathCacheSize: 0 });
  const mtls = new MutualTls(pki.server, verifier);
  let ups = 0;
  let cpu0 = 0;
  let cpu1 = 0;
  const server = new TlsTransport({
    local: `${GROUP}/core/core-1`,
    tls: mtls.contextOptions(),
    identify: identify ?? mtls.transportIdentify(leafExpect),
    maxLinks: 4096,
  });
  server.setHandler({
    onMessage: () => {},
    onPeerUp: () => {
      // Only two readings: getrusage is a slow system call in some sandboxes.
      ups++;
      if (ups === 1) cpu0 = cpuMs();
      if (ups === rounds * pki.leaves.length) cpu1 = cpuMs();
    },
  });
  const { port } = await server.listen(0);
  for (let r = 0; r < rounds; r++) {
    // The spec (hundreds of PEM keys) goes over IPC: it would not fit an environment.
    const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [CHILD_ENV]: '1' } });
    const spec: ClientSpec = { port, caPem: pki.caPem, leaves: pki.leaves, concurrency: 16 };
    child.send(spec);
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited ${code}`))));
    });
    child.kill();
  }
  await server.close();
  const n = ups - 1; // cpu0 is taken at the first link-up
  process.stdout.write(
    `tls      ${label.padEnd(34)} ${(((cpu1 - cpu0) / n) * 1000).toFixed(0).padStart(6)} µs CPU per handshake+link (${ups} links)\n`,
  );
}

function verifyCase(pki: Pki, ders: Uint8Array[]): void {
  for (const [label, size] of [
    ['cache off', 0],
    ['cache warm', 4096],
  ] as const) {
    const v = new PeerVerifier({ anchors: [pki.ca], group: GROUP, pathCacheSize: size });
    for (const d of ders) v.verify([d], leafExpect);
    const c0 = cpuMs();
    const rounds = 3;
    for (let r = 0; r < rounds; r++)
      for (const d of ders) if (!v.verify([d], leafExpect).ok) throw new Error('refused');
    const per = ((cpuMs() - c0) / (rounds * ders.length)) * 1000;
    process.stdout.write(
      `verify   ${label.padEnd(34)} ${per.toFixed(0).padStart(6)} µs CPU per leaf certificate\n`,
    );
  }
}

// ── store: LKH batches and the durable log ──────────────────────────────────────────────────────

async function storeCase(population: number, perBatch: number): Promise<void> {
  const suite = await loadSuite();
  const dir = mkdtempSync(join(tmpdir(), 'kg-admission-cost-'));
  try {
    const machine = new LeafStateMachine({
      suite,
      group: new TextEncoder().encode(GROUP),
      secret: new Uint8Array(32).fill(7),
      maxLeaves: population + 1000,
    });
    machine.setPrimary(true);
    const store = LeafStore.open(new FileStorage(), dir, machine, { suite });
    const admit = (i: number): LeafCommand => ({
      kind: 'admit',
      value: { name: `l${i}`, serial: `s${i}`, fingerprint: new Uint8Array(32).fill(i & 255), now: 1 },
    });
    // Grow the population in big batches first (not measured).
    for (let i = 0; i < population; i += 1000) {
      store.commit(Array.from({ length: Math.min(1000, population - i) }, (_, k) => admit(i + k)));
      store.commit([{ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } }]);
    }
    const measured = 500;
    const syncs0 = store.stats.syncs;
    const c0 = cpuMs();
    const w0 = performance.now();
    for (let i = 0; i < measured; i++) {
      store.commit([admit(population + i)]); // one ordered admit per stack event: the worst case
      if (i % perBatch === perBatch - 1)
        store.commit([{ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } }]);
    }
    const cpu = (cpuMs() - c0) / measured;
    const wall = (performance.now() - w0) / measured;
    const syncs = store.stats.syncs - syncs0;
    store.close();
    process.stdout.write(
      `store    ${`${population} leaves, ${perBatch} joins/batch`.padEnd(34)} ${(cpu * 1000).toFixed(0).padStart(6)} µs CPU, ${(wall * 1000).toFixed(0)} µs wall per admission; ${syncs} fsyncs for ${measured} admissions\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, def: string): string => {
    const i = args.indexOf(name);
    return i >= 0 ? (args[i + 1] ?? def) : def;
  };
  const populations = opt('--leaves', '100,1000,10000').split(',').map(Number);
  const handshakes = Number(opt('--handshakes', '200'));
  const only = opt('--only', 'verify,tls,store').split(',');
  const pki = await makePki(handshakes);
  const ders = pki.leaves.map((l) => new Uint8Array(new X509Certificate(l.certPem).raw));
  if (only.includes('verify')) verifyCase(pki, ders);
  if (only.includes('tls')) {
    const sanOnly = (cert: X509Certificate): string | Error => {
      const m = /URI:(keyglass:\/\/[^,\s]+)/.exec(cert.subjectAltName ?? '');
      return m ? m[1]!.slice('keyglass://'.length) : new Error('no identity');
    };
    await tlsCase(pki, 'identify = read SAN only', sanOnly, 2);
    await tlsCase(pki, 'identify = PeerVerifier (no cache)', undefined, 2);
  }
  if (only.includes('store'))
    for (const population of populations)
      for (const perBatch of [1, 25]) await storeCase(population, perBatch);
}

if (process.env[CHILD_ENV] === '1')
  process.once('message', (spec) => void clientMain(spec as ClientSpec).then(() => process.disconnect()));
else await main();
