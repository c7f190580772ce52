/**
 * A throwaway Keyglass deployment on 127.0.0.1, for `keyglass demo` and the server tests: a CA
 * (ca-tools library) in a temp dir, certificates and configs on disk, `keyglass server` child
 * processes of the compiled cli/bin.js (stderr appended to `<dir>/<name>.log`), and LeafClients
 * in the calling process. `stop()` closes the leaves, SIGKILLs every child, waits for it to exit
 * and removes the temp dir; `killAllNow()` is the synchronous last resort for process exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePrivateKey } from '../../auth/index.js';
import { CertificateAuthority } from '../../ca-tools/index.js';
import { LeafClient, type LeafClientEvents, type LeafClientOptions } from '../../leaf-sdk/index.js';
import type { ServerStatus } from '../../server/index.js';

/** The compiled `keyglass` entry point next to this module's folder. */
export const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));
export const GROUP = 'g';

/** Lines of stderr kept in memory per server (the full log is in its file). */
const MAX_LOG_LINES = 5000;
/** Keys / messages remembered per leaf (oldest dropped first). */
const MAX_LEAF_RECORDS = 10_000;
const START_TIMEOUT_MS = 15_000;

/** Ports the OS reports free right now (bound to 0 and released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Polls `cond` every 50 ms until it holds (a throw counts as "not yet"); rejects after `timeoutMs`. */
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
  readonly logFile: string;
  child: ChildProcess | undefined;
  /** The last MAX_LOG_LINES stderr lines. */
  readonly logs: string[];
}

export interface LocalLeaf {
  readonly name: string;
  readonly serial: string;
  readonly client: LeafClient;
  readonly keys: (LeafClientEvents['key'][0] & { at: number })[];
  readonly messages: (LeafClientEvents['message'][0] & { at: number })[];
  readonly evicted: string[];
  readonly errors: Error[];
}

const pushBounded = <T>(xs: T[], x: T, max: number): void => {
  if (xs.length >= max) xs.shift();
  xs.push(x);
};

/**
 * Extra node flags for child processes (servers, bench workers), from KG_CHILD_NODE_ARGS
 * (space-separated). Profiling runs set `--cpu-prof --cpu-prof-dir=DIR`: node 20 refuses
 * --cpu-prof in NODE_OPTIONS.
 */
export function childNodeArgs(): string[] {
  return (process.env['KG_CHILD_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
}

export class LocalCluster {
  readonly dir: string;
  readonly servers: ServerProc[] = [];
  readonly leaves: LocalLeaf[] = [];
  readonly crlPath: string;
  readonly caPemPath: string;
  caPem = '';
  private ca: CertificateAuthority | undefined;
  private caKey: ReturnType<CertificateAuthority['unlock']> | undefined;
  private stopped = false;
  /** Servers SIGKILLed whose exit has not been seen yet. */
  private readonly exiting = new Map<ServerProc, Promise<void>>();
  /** The CA's on-disk store takes a lock per operation: its operations run one at a time. */
  private caQueue: Promise<unknown> = Promise.resolve();

  constructor(prefix = 'kg-cluster-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.crlPath = join(this.dir, 'ca.crl');
    this.caPemPath = join(this.dir, 'ca.pem');
  }

  /** Creates the CA (unencrypted key: the directory is throwaway) and an empty CRL. */
  async init(caName = 'Keyglass Local CA'): Promise<void> {
    this.ca = await CertificateAuthority.init({
      dir: join(this.dir, 'ca'),
      name: caName,
      passphrase: undefined,
    });
    this.caKey = this.ca.unlock(undefined);
    this.caPem = this.ca.certificatePem;
    writeFileSync(this.caPemPath, this.caPem);
    await this.ca.createCrl(this.caKey, { outPath: this.crlPath });
  }

  private withCa<T>(
    op: (ca: CertificateAuthority, key: ReturnType<CertificateAuthority['unlock']>) => Promise<T>,
  ): Promise<T> {
    const run = this.caQueue.then(() => {
      // After stop() nothing may write into the directory it is about to remove.
      if (this.stopped) throw new Error('LocalCluster: stopped');
      const { ca, key } = this.authority();
      return op(ca, key);
    });
    this.caQueue = run.catch(() => {});
    return run;
  }

  private authority(): { ca: CertificateAuthority; key: ReturnType<CertificateAuthority['unlock']> } {
    if (this.ca === undefined || this.caKey === undefined) throw new Error('LocalCluster: init() first');
    return { ca: this.ca, key: this.caKey };
  }

  /** `force`: a second active certificate for the name (a rotation: new key, new serial, same files). */
  async issue(role: 'core' | 'leaf', name: string, force = false): Promise<Member> {
    return (await this.issueMany(role, [name], force))[0]!;
  }

  /** Issues certificates for several names in one CA transaction (one store rewrite for all). */
  async issueMany(role: 'core' | 'leaf', names: readonly string[], force = false): Promise<Member[]> {
    // The files are written inside the CA queue, which stop() drains before removing the dir.
    return this.withCa(async (ca, key) => {
      const issued = await ca.issueMany(
        names.map((name) => ({ group: GROUP, role, name, ...(force ? { force } : {}) })),
        key,
      );
      return issued.map((r) => {
        const keyPem = encodePrivateKey(r.privateKey!, undefined);
        const certFile = join(this.dir, `${r.record.name}.pem`);
        const keyFile = join(this.dir, `${r.record.name}.key`);
        writeFileSync(certFile, r.certificatePem);
        writeFileSync(keyFile, keyPem, { mode: 0o600 });
        return { certPem: r.certificatePem, keyPem, serial: r.certificate.serial, certFile, keyFile };
      });
    });
  }

  /** Revokes a serial and writes the new CRL to the path every server polls. */
  async revoke(serial: string): Promise<void> {
    await this.withCa(async (ca, key) => {
      await ca.revoke({ serial });
      await ca.createCrl(key, { outPath: this.crlPath });
    });
  }

  configFile(s: ServerProc): string {
    return join(this.dir, `${s.name}.json`);
  }

  /** Writes certificates and configs for `n` servers `core-1..n` (free ports) and starts them. */
  async startServers(n: number, extra: Record<string, unknown> = {}): Promise<void> {
    if (this.servers.length !== 0) throw new Error('LocalCluster: servers already started');
    const ports = await freePorts(3 * n);
    for (let i = 0; i < n; i++) {
      const name = `core-${i + 1}`;
      await this.issue('core', name);
      this.servers.push({
        name,
        ports: { core: ports[3 * i]!, leaf: ports[3 * i + 1]!, admin: ports[3 * i + 2]! },
        logFile: join(this.dir, `${name}.log`),
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
      writeFileSync(this.configFile(s), JSON.stringify(config, null, 2));
    }
    await Promise.all(this.servers.map((s) => this.spawn(s)));
  }

  /** Starts (or restarts) one server and waits for its 'listening' log line. */
  /**
   * Starts `s` (resolves once it listens). A server SIGKILLed just before is waited for first:
   * its ports are free only once the kernel reaped the process, and a restart on the same ports
   * raced that under load ("listen.leaf … is already in use").
   */
  spawn(s: ServerProc): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('LocalCluster: stopped'));
    if (s.child !== undefined) throw new Error(`LocalCluster: ${s.name} is running`);
    const exiting = this.exiting.get(s);
    if (exiting !== undefined) return exiting.then(() => this.spawn(s));
    const child = spawn(
      process.execPath,
      [...childNodeArgs(), BIN, 'server', '--config', this.configFile(s)],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    s.child = child;
    child.once('exit', () => {
      if (s.child === child) s.child = undefined;
    });
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(
        () => reject(new Error(`${s.name} did not start within ${START_TIMEOUT_MS} ms (log: ${s.logFile})`)),
        START_TIMEOUT_MS,
      );
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        appendFileSync(s.logFile, chunk);
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          pushBounded(s.logs, line, MAX_LOG_LINES);
          if (line.includes('"msg":"listening"')) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(
            `${s.name} exited (${code ?? signal}) (log: ${s.logFile}): ${s.logs.slice(-5).join('\n')}`,
          ),
        );
      });
    });
  }

  /** Rewrites one field in every server's config (e.g. the cluster generation). */
  setConfig(field: string, value: unknown): void {
    for (const s of this.servers) {
      const file = this.configFile(s);
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...cfg, [field]: value }, null, 2));
    }
  }

  /** SIGKILLs one server (`s.child` is cleared at once; a `spawn` of it waits for the exit). */
  kill(s: ServerProc): void {
    const child = s.child;
    if (child === undefined) return;
    s.child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).finally(() => {
        if (this.exiting.get(s) === exited) this.exiting.delete(s);
      });
      this.exiting.set(s, exited);
    }
    child.kill('SIGKILL');
  }

  alive(): ServerProc[] {
    return this.servers.filter((s) => s.child !== undefined);
  }

  adminUrl(s: ServerProc, path = ''): string {
    return `http://127.0.0.1:${s.ports.admin}${path}`;
  }

  async get(s: ServerProc, path: string): Promise<Response> {
    return fetch(this.adminUrl(s, path), { signal: AbortSignal.timeout(3000) });
  }

  async status(s: ServerProc): Promise<ServerStatus> {
    return (await (await this.get(s, '/status')).json()) as ServerStatus;
  }

  /** Issues a leaf certificate and connects a LeafClient; `first` picks the server it tries first. */
  async leaf(name: string, first = 0, options: LeafClientOptions = {}): Promise<LocalLeaf> {
    const m = await this.issue('leaf', name);
    const client = new LeafClient({
      backoffBaseMs: 50,
      backoffMaxMs: 500,
      welcomeTimeoutMs: 5000,
      maxAttempts: 40,
      ...options,
    });
    const leaf: LocalLeaf = {
      name,
      serial: m.serial,
      client,
      keys: [],
      messages: [],
      evicted: [],
      errors: [],
    };
    client.on('key', (k) => pushBounded(leaf.keys, { ...k, at: Date.now() }, MAX_LEAF_RECORDS));
    client.on('message', (msg) => pushBounded(leaf.messages, { ...msg, at: Date.now() }, MAX_LEAF_RECORDS));
    client.on('evicted', (e) => leaf.evicted.push(e.reason));
    client.on('error', (e) => pushBounded(leaf.errors, e, MAX_LEAF_RECORDS));
    this.leaves.push(leaf);
    const order = this.servers.map((_, i) => this.servers[(first + i) % this.servers.length]!);
    await client.connect({
      servers: order.map((s) => ({ host: '127.0.0.1', port: s.ports.leaf })),
      credentials: { certPem: m.certPem, keyPem: m.keyPem },
      trust: { caPem: this.caPem },
    });
    return leaf;
  }

  /**
   * Waits until every server is in one primary view of all of them and knows every server's
   * rekey-signing key — the state a freshly started cluster settles into. Resolves with the
   * servers' statuses in that state.
   */
  async untilOnePrimaryView(timeoutMs = 20_000): Promise<ServerStatus[]> {
    const n = this.servers.length;
    let st: ServerStatus[] = [];
    await until(
      `one primary view of ${n}`,
      async () => {
        st = await Promise.all(this.servers.map((s) => this.status(s)));
        return (
          new Set(st.map((x) => x.view.id)).size === 1 &&
          st.every((x) => x.view.primary && x.view.members.length === n && x.signers.length === n)
        );
      },
      timeoutMs,
    );
    return st;
  }

  /** Synchronous: SIGKILL every child (for a process 'exit' handler; no waiting, no cleanup). */
  killAllNow(): void {
    for (const s of this.servers) this.kill(s);
  }

  /** Closes every leaf, SIGKILLs every server and waits for it to exit, removes the temp dir. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    this.stopped = true;
    await Promise.all(this.leaves.map((l) => l.client.close({ leave: false }).catch(() => {})));
    const exits = this.servers.flatMap((s) => {
      const child = s.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return [];
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      return [exited];
    });
    for (const s of this.servers) s.child = undefined;
    await Promise.all(exits);
    await this.caQueue; // a certificate being issued finishes (or is refused) before the rm
    if (opts.keepDir !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}
