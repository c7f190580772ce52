/**
 * Real `keyglass server` processes on 127.0.0.1 for tests: a throwaway CA (ca-tools library) in a
 * temp dir, certificates and configs on disk, servers spawned as child processes of the compiled
 * cli/bin.js, LeafClients in the test process. Every child is SIGKILLed in `stop()`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePrivateKey } from '../../auth/index.js';
import { CertificateAuthority } from '../../ca-tools/index.js';
import { LeafClient, type LeafClientEvents } from '../../gossip-edge/index.js';
import type { ServerStatus } from '../../core-group/server/index.js';

export const BIN = fileURLToPath(new URL('../../cli/bin.js', import.meta.url));
export const GROUP = 'g';

/** Ports the OS reports free right now (bound to 0 and released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface Member {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serial: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ServerProc {
  readonly name: string;
  readonly ports: { core: number; leaf: number; admin: number };
  child: ChildProcess | undefined;
  readonly logs: string[];
}

export interface Leaf {
  readonly name: string;
  readonly client: LeafClient;
  readonly keys: LeafClientEvents['key'][0][];
  readonly messages: LeafClientEvents['message'][0][];
  readonly evicted: string[];
  readonly errors: Error[];
}

export class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'kg-server-'));
  readonly servers: ServerProc[] = [];
  readonly leaves: Leaf[] = [];
  readonly crlPath = join(this.dir, 'ca.crl');
  readonly caPemPath = join(this.dir, 'ca.pem');
  private ca!: CertificateAuthority;
  private caKey!: ReturnType<CertificateAuthority['unlock']>;
  caPem = '';

  async init(): Promise<void> {
    this.ca = await CertificateAuthority.init({
      dir: join(this.dir, 'ca'),
      name: 'Server Test CA',
      passphrase: undefined,
    });
    this.caKey = this.ca.unlock(undefined);
    this.caPem = this.ca.certificatePem;
    writeFileSync(this.caPemPath, this.caPem);
    await this.ca.createCrl(this.caKey, { outPath: this.crlPath });
  }

  async issue(role: 'core' | 'leaf', name: string): Promise<Member> {
    const r = await this.ca.issue({ group: GROUP, role, name }, this.caKey);
    const keyPem = encodePrivateKey(r.privateKey!, undefined);
    const certFile = join(this.dir, `${name}.pem`);
    const keyFile = join(this.dir, `${name}.key`);
    writeFileSync(certFile, r.certificatePem);
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    return { certPem: r.certificatePem, keyPem, serial: r.certificate.serial, certFile, keyFile };
  }

  /** Revokes a serial and writes the new CRL to the path every server polls. */
  async revoke(serial: string): Promise<void> {
    await this.ca.revoke({ serial });
    await this.ca.createCrl(this.caKey, { outPath: this.crlPath });
  }

  /** Writes configs for `n` servers and starts them. */
  async startServers(n: number, extra: Record<string, unknown> = {}): Promise<void> {
    const ports = await freePorts(3 * n);
    const names = Array.from({ length: n }, (_, i) => `core-${i + 1}`);
    for (const [i, name] of names.entries()) {
      await this.issue('core', name);
      this.servers.push({
        name,
        ports: { core: ports[3 * i]!, leaf: ports[3 * i + 1]!, admin: ports[3 * i + 2]! },
        child: undefined,
        logs: [],
      });
    }
    for (const s of this.servers) {
      const peers = Object.fromEntries(
        this.servers.filter((p) => p !== s).map((p) => [p.name, `127.0.0.1:${p.ports.core}`]),
      );
      const config = {
        name: s.name,
        group: GROUP,
        listen: {
          core: `127.0.0.1:${s.ports.core}`,
          leaf: `127.0.0.1:${s.ports.leaf}`,
          admin: `127.0.0.1:${s.ports.admin}`,
        },
        peers,
        credentials: { cert: `${s.name}.pem`, key: `${s.name}.key` },
        trustAnchors: 'ca.pem',
        crl: 'ca.crl',
        crlPollMs: 100,
        dataDir: `data-${s.name}`,
        batchIntervalMs: 50,
        leaseMs: 3000,
        logLevel: 'info',
        handshakeTimeoutMs: 1500,
        ...extra,
      };
      writeFileSync(join(this.dir, `${s.name}.json`), JSON.stringify(config, null, 2));
    }
    await Promise.all(this.servers.map((s) => this.spawn(s)));
  }

  /** Starts (or restarts) one server and waits for its 'listening' log line. */
  spawn(s: ServerProc): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'server', '--config', join(this.dir, `${s.name}.json`)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    s.child = child;
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(
        () => reject(new Error(`${s.name} did not start: ${s.logs.join('')}`)),
        15_000,
      );
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (s.logs.length < 5000) s.logs.push(line);
          if (line.includes('"msg":"listening"')) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${s.name} exited (${code ?? signal}): ${s.logs.slice(-5).join('\n')}`));
      });
    });
  }

  /** Rewrites one field in every server's config (e.g. the cluster generation). */
  setConfig(field: string, value: unknown): void {
    for (const s of this.servers) {
      const file = join(this.dir, `${s.name}.json`);
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...cfg, [field]: value }, null, 2));
    }
  }

  kill(s: ServerProc): void {
    s.child?.kill('SIGKILL');
    s.child = undefined;
  }

  alive(): ServerProc[] {
    return this.servers.filter((s) => s.child !== undefined);
  }

  async get(s: ServerProc, path: string): Promise<Response> {
    return fetch(`http://127.0.0.1:${s.ports.admin}${path}`, { signal: AbortSignal.timeout(3000) });
  }

  async status(s: ServerProc): Promise<ServerStatus> {
    return (await (await this.get(s, '/status')).json()) as ServerStatus;
  }

  /** Connects a new leaf; `first` picks the server it tries first. */
  async leaf(name: string, first = 0): Promise<Leaf> {
    const m = await this.issue('leaf', name);
    const client = new LeafClient({
      backoffBaseMs: 50,
      backoffMaxMs: 500,
      welcomeTimeoutMs: 5000,
      maxAttempts: 40,
    });
    const leaf: Leaf = { name, client, keys: [], messages: [], evicted: [], errors: [] };
    client.on('key', (k) => leaf.keys.push(k));
    client.on('message', (msg) => leaf.messages.push(msg));
    client.on('evicted', (e) => leaf.evicted.push(e.reason));
    client.on('error', (e) => leaf.errors.push(e));
    this.leaves.push(leaf);
    const order = this.servers.map((_, i) => this.servers[(first + i) % this.servers.length]!);
    await client.connect({
      servers: order.map((s) => ({ host: '127.0.0.1', port: s.ports.leaf })),
      credentials: { certPem: m.certPem, keyPem: m.keyPem },
      trust: { caPem: this.caPem },
    });
    return Object.assign(leaf, { serial: m.serial });
  }

  async stop(): Promise<void> {
    await Promise.all(this.leaves.map((l) => l.client.close({ leave: false }).catch(() => {})));
    for (const s of this.servers) this.kill(s);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet (e.g. a server still starting)
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `keyglass ARGS` to completion. */
export function keyglass(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
