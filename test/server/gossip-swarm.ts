/**
 * Parent side of the gossip swarm test: leaf child processes (gossip-swarm-child.ts), each
 * holding many LeafClients, driven over IPC. Every request has a deadline; `kill` is SIGKILL.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SwarmChildConfig {
  readonly servers: readonly { host: string; port: number }[];
  readonly firstServer: number;
  readonly caPem: string;
  readonly leaves: readonly { name: string; certPem: string; keyPem: string }[];
}

export interface SwarmLeafReport {
  readonly name: string;
  readonly epoch: number;
  readonly keyId: string | undefined;
  readonly texts: readonly string[];
  readonly evicted: string | undefined;
  readonly evictedAt: number | undefined;
  readonly afterEviction: number;
  readonly gossipRekeys: number;
  readonly tlsRekeys: number;
  readonly gossipData: number;
  readonly tlsData: number;
  readonly duplicates: number;
  readonly sent: number;
  readonly catchUps: number;
  readonly dataPulls: number;
  readonly pulledData: number;
  readonly dataDuplicates: number;
  readonly rejoins: number;
  readonly moves: number;
  readonly gossipRefused: number;
  readonly replayedEarly: number;
}

export type SwarmRequest =
  | { kind: 'report'; id: number }
  | { kind: 'publish'; id: number; leaf: number; text: string }
  | { kind: 'exit' };

export type SwarmReply =
  | { kind: 'ready' }
  | { kind: 'report'; id: number; leaves: SwarmLeafReport[] }
  | { kind: 'published'; id: number; ok: boolean };

const CHILD = fileURLToPath(new URL('./gossip-swarm-child.js', import.meta.url));
const REQUEST_TIMEOUT_MS = 10_000;

export class SwarmProc {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, (r: SwarmReply) => void>();
  readonly ready: Promise<void>;
  alive = true;

  constructor(
    dir: string,
    readonly index: number,
    readonly config: SwarmChildConfig,
    readyTimeoutMs: number,
  ) {
    const file = join(dir, `swarm-${index}.json`);
    writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    this.child = fork(CHILD, [file], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.child.once('exit', () => {
      this.alive = false;
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`swarm ${index} not ready in ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
      this.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`swarm ${index} exited (${code ?? signal})`));
      });
      this.child.on('message', (r: SwarmReply) => {
        if (r.kind === 'ready') {
          clearTimeout(timer);
          resolve();
          return;
        }
        const done = this.pending.get(r.id);
        this.pending.delete(r.id);
        done?.(r);
      });
    });
    this.ready.catch(() => {});
  }

  private request(
    req: { kind: 'report' } | { kind: 'publish'; leaf: number; text: string },
  ): Promise<SwarmReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`swarm ${this.index}: ${req.kind} timed out`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.send({ ...req, id } as SwarmRequest);
    });
  }

  async report(): Promise<SwarmLeafReport[]> {
    const r = await this.request({ kind: 'report' });
    return r.kind === 'report' ? r.leaves : [];
  }

  async publish(leaf: number, text: string): Promise<boolean> {
    const r = await this.request({ kind: 'publish', leaf, text });
    return r.kind === 'published' && r.ok;
  }

  kill(): void {
    this.alive = false;
    this.child.kill('SIGKILL');
  }

  /** Asks the child to close its leaves and exit; SIGKILL if it has not after 3 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    if (this.child.connected) this.child.send({ kind: 'exit' } satisfies SwarmRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
