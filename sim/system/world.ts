/**
 * The system world (issue 19 item 4): 3–7 core servers hosting the real stack and leaf plane
 * (server-node.ts) and leaves hosting the real LeafSession over simulated TLS links
 * (leaf-node.ts), on one Simulator, with the ledger that observes them. No workload and no
 * faults: the caller drives it through the actions here (run.ts draws a workload and a fault
 * plan from the seed; `keyglass demo --sim` plays its scripted timeline).
 */
import type { CipherSuite } from '../../crypto/index.js';
import type { VerifiedCrl } from '../../auth/index.js';
import { Rng, Simulator } from '../../net/sim/index.js';
import { DEFAULT_IMAGES_PER_FILE, MemoryStorage, type CrashPlan, type FailingOp } from '../memory-storage.js';
import { SystemLedger, type SystemViolation } from './ledger.js';
import { leafNode, type LeafHandle } from './leaf-node.js';
import {
  leafCertOf,
  leafName,
  serverIdentityOf,
  serverName,
  wallClock,
  type SystemMessage,
} from './messages.js';
import { SimCa } from './ca.js';
import { serverNode, type ServerHandle } from './server-node.js';
import {
  AttackWatch,
  adversaryNode,
  malloryName,
  type AdversaryHandle,
  type AttackScript,
} from './adversary.js';
import { decodeLeafFrame } from '../../gossip-edge/index.js';
import type { ApplyResult, LeafCert, LeafCommand, LeafStateMachine } from '../../leaf-plane/index.js';
import type { View } from '../../core-group/index.js';

export const DEFAULT_LEASE_MS = 3_000;
export const DEFAULT_LEAF_KEY_REFRESH_MS = 4_000;

export interface SystemWorldOptions {
  readonly seed: number;
  readonly suite: CipherSuite;
  readonly servers: number;
  readonly leaves: number;
  /** Base one-way latency of every link (jitter 2 ms on top). */
  readonly latencyMs: number;
  readonly leaseMs?: number;
  readonly leafKeyRefreshMs?: number;
  /**
   * Servers' disks keep synced images (MemoryStorage imagesPerFile) so that a crash can roll one
   * back (`crashServer(i, { rollback })`); `failStorage` works either way.
   */
  readonly rollbackImages?: boolean;
  /** Adversarial leaves (adversary.ts): simulator nodes after the leaves, idle until `attack`. */
  readonly adversaries?: number;
  /** What a driver watches besides the ledger (`keyglass demo --sim` feeds its figures from it). */
  readonly observer?: SystemObserver;
}

/**
 * Taps in the hosts (no protocol logic): what a replica committed, its views, state transfers and
 * timed work; the frames on the leaf links (what an eavesdropper on the wire sees); what each leaf
 * session reported. `t` is virtual ms.
 */
export interface SystemObserver {
  committed?(
    server: string,
    commands: readonly LeafCommand[],
    results: readonly ApplyResult[],
    machine: LeafStateMachine,
    t: number,
  ): void;
  /** A core message left `server` (bytes on the wire between servers). */
  coreSent?(server: string, bytes: number): void;
  view?(server: string, view: View, t: number): void;
  stateTransfer?(server: string, t: number): void;
  timed?(server: string, what: string, ms: number): void;
  leafFrame?(leaf: string, toServer: boolean, bytes: Uint8Array, t: number): void;
  leafKey?(leaf: string, epoch: number, t: number): void;
  leafMessage?(leaf: string, sender: number, seq: number, t: number): void;
  /** The leaf's session was told it is evicted (terminal, as for LeafClient). */
  leafEvicted?(leaf: string, reason: string, t: number): void;
}

/**
 * The world and what a driver may do to it. Simulator nodes 0..servers−1 are servers, then the
 * leaves, then the adversaries.
 */
export interface SystemWorld {
  readonly sim: Simulator<SystemMessage>;
  readonly ledger: SystemLedger;
  readonly servers: number;
  readonly leaves: number;
  readonly adversaries: number;
  /** The checks on what the edges sent the adversaries. */
  readonly attackWatch: AttackWatch;
  /** Exceptions out of the real code (the run stopped at the first). */
  readonly errors: readonly SystemViolation[];
  readonly revokedSerials: ReadonlySet<string>;
  /** Server crashes (incarnations after the first) and leaf process restarts so far. */
  readonly crashes: number;
  readonly leafRestarts: number;
  /** The handle of server `i` (its current incarnation), if it ever started. */
  server(i: number): ServerHandle | undefined;
  /** The handle of leaf `i` (its current process). */
  leaf(i: number): LeafHandle;
  /** Simulator node of leaf `i`. */
  leafNodeId(i: number): number;
  leafCert(i: number): LeafCert;
  /** Up, unpaused servers, but a revoked one (it is out of the cluster). */
  liveServers(): ServerHandle[];
  /** Calls `fn` with every leaf frame on the wire (what an eavesdropper of every link sees). */
  tapLeafFrames(fn: NonNullable<SystemObserver['leafFrame']>): void;
  /** Leaf `i` starts linking (to `server` first), joins, and fails over on its own. */
  connect(i: number, server: number): void;
  leave(i: number): void;
  /** The CRL gains leaf `i`'s serial and every running server loads it; false if already revoked. */
  revoke(i: number): boolean;
  /**
   * The CRL gains core server `r`'s serial: every other running server loads it (their core TLS
   * refuses `r` from now on, the plane starts the full refresh); `r` — compromised — goes on with
   * the CRL it had. False if already revoked.
   */
  revokeServer(r: number): boolean;
  readonly ca: SimCa;
  /** Crashes server `i`; its next start finds its disk as `disk` leaves it (default: unsynced bytes meet a drawn fate). */
  crashServer(i: number, disk?: CrashPlan): void;
  restartServer(i: number): void;
  /** The next `op` on server `i`'s disk fails (the server then stops, and is started again). */
  failStorage(i: number, op: FailingOp): void;
  /** Servers stopped by a failed store write (as `keyglass server` exits), and rollbacks done. */
  readonly storageStops: number;
  readonly rollbacks: number;
  /** Why a server whose disk was rolled back refused to start (it stays down). */
  readonly startRefusals: readonly string[];
  /** Leaf `i` publishes `data` (false: not sent — not welcomed, or its publish window is full). */
  publish(i: number, data: Uint8Array): boolean;
  /** Adversary `a` runs `script`. */
  attack(a: number, script: Omit<AttackScript, 'victimRenewal'>, victim?: number): void;
  adversary(a: number): AdversaryHandle;
}

export function buildSystemWorld(opts: SystemWorldOptions): SystemWorld {
  const { seed, suite, servers: S, leaves: L } = opts;
  const A = opts.adversaries ?? 0;
  const sim = new Simulator<SystemMessage>({
    seed,
    link: { latencyMs: opts.latencyMs, jitterMs: 2 },
    traceRing: 0,
  });
  const ledger = new SystemLedger(suite);
  const errors: SystemViolation[] = [];
  const fail = (detail: string): void => {
    if (errors.length < 5) errors.push({ property: 'exception', detail });
    sim.stop();
  };

  const identity = Rng.seeded(seed).fork('identity');
  const identitySeeds = Array.from({ length: S }, (_, i) => identity.fork(serverName(i)).bytes(32));
  const verifyKeys = new Map(
    identitySeeds.map((s, i) => [serverName(i), suite.ed25519PublicKey(s)] as const),
  );
  const revokedSerials = ledger.revokedSerials;
  // The CA's newest CRL is what every server has loaded (a server down or paused at a revocation
  // finds it at its next start, as from its CRL file); a revoked core server — compromised —
  // keeps the CRL it had (ca.ts).
  const ca = new SimCa(seed);
  const serverSerials = Array.from({ length: S }, (_, i) => serverIdentityOf(seed, i).serial);
  const frozenCrl = new Map<number, VerifiedCrl | undefined>();
  const registryOf = (crl: () => VerifiedCrl | undefined) => ({
    installed: (): VerifiedCrl[] => {
      const c = crl();
      return c === undefined ? [] : [c];
    },
    isRevokedSerial: (serial: string) => crl()?.revoked.has(serial) === true,
  });
  const liveRegistry = registryOf(() => ca.current);
  const revocationOf = (id: number) =>
    frozenCrl.has(id) ? registryOf(() => frozenCrl.get(id)) : liveRegistry;
  /**
   * Every running server (but a revoked one) loads the CA's newest CRL, as KeyServer's reload on
   * SIGHUP does (a paused one when it resumes; one that is down reads it when it starts).
   */
  const loadCrl = (serials: ReadonlySet<string>, coreServers: { name: string; serial: string }[]): void =>
    serverHandles.forEach((h, id) => {
      if (h === undefined || sim.isCrashed(id) || frozenCrl.has(id)) return;
      h.signal(() => {
        if (h.plane.crlInstalled()) h.plane.pushCrl(wallClock(sim.now));
        h.plane.revoked(serials, coreServers, wallClock(sim.now));
      });
    });
  // Leaves' certificates, then the adversaries' (valid ones: they are admitted leaves).
  const certs = [
    ...Array.from({ length: L }, (_, i) => leafCertOf(seed, i)),
    ...Array.from({ length: A }, (_, a) => ({ ...leafCertOf(seed, L + a), name: malloryName(a) })),
  ];
  const attackWatch = new AttackWatch(
    ledger,
    new Map(Array.from({ length: A }, (_, a) => [S + L + a, malloryName(a)] as const)),
  );
  // The newest lease renewal each leaf put on the wire (what an eavesdropper replays).
  const renewals = new Map<string, Uint8Array>();
  const userObserver = opts.observer ?? {};
  const taps: NonNullable<SystemObserver['leafFrame']>[] = [];
  const observer: SystemObserver = {
    ...userObserver,
    leafFrame: (leaf, toServer, bytes, t) => {
      userObserver.leafFrame?.(leaf, toServer, bytes, t);
      for (const tap of taps) tap(leaf, toServer, bytes, t);
      if (A > 0 && toServer && decodeLeafFrame(bytes).type === 'leaseRenew') renewals.set(leaf, bytes);
    },
  };
  const storages = Array.from(
    { length: S },
    (_, i) =>
      new MemoryStorage({
        rng: Rng.seeded(seed).fork('storage').fork(i),
        imagesPerFile: opts.rollbackImages === true ? DEFAULT_IMAGES_PER_FILE : 0,
      }),
  );
  // The disk each server's next start finds (set by crashServer; used once).
  const crashPlans = new Map<number, CrashPlan>();
  const supervisor = Rng.seeded(seed).fork('supervisor');
  let storageStops = 0;
  let rollbacks = 0;
  /** Servers whose disk a crash rolled back, and why any of them then refused to start. */
  const rolledBack = new Set<number>();
  const refusals: string[] = [];
  const serverHandles: (ServerHandle | undefined)[] = new Array(S).fill(undefined);
  const leafHandles = new Map<number, LeafHandle>();
  let links = 0;
  let crashes = 0;
  let leafRestarts = 0;
  for (let i = 0; i < S; i++)
    sim.addNode((env) => {
      if (env.incarnation > 0) crashes++;
      // A server that cannot start from its storage (as `keyglass server` would exit) fails the run.
      try {
        return serverNode(
          {
            seed,
            suite,
            servers: S,
            leaseMs: opts.leaseMs ?? DEFAULT_LEASE_MS,
            leafKeyRefreshMs: opts.leafKeyRefreshMs ?? DEFAULT_LEAF_KEY_REFRESH_MS,
            storages,
            ledger,
            identitySeeds,
            verifyKeys,
            certOf: (node) => certs[node - S]!,
            revocationOf,
            fail,
            stopped: (id) => {
              storageStops++;
              // The process exits now; a supervisor starts it again a little later.
              const inc = sim.incarnationOf(id);
              sim.after(0, () => void (sim.incarnationOf(id) === inc && sim.crash(id)));
              sim.after(300 + supervisor.int(1_000), () => {
                if (sim.isCrashed(id) && sim.incarnationOf(id) === inc) sim.restart(id);
              });
            },
            crashPlan: (id) => {
              const plan = crashPlans.get(id) ?? {};
              crashPlans.delete(id);
              if (plan.rollback !== undefined) {
                rollbacks++;
                rolledBack.add(id);
              }
              return plan;
            },
            observer,
            ...(A > 0 ? { sentToLeaf: attackWatch.sent.bind(attackWatch) } : {}),
          },
          env,
          serverHandles,
        );
      } catch (e) {
        // After a rollback of its disk, refusing to start is the server noticing (it stays down:
        // an operator's matter); reported with the run, not a failure of it. Otherwise a bug.
        if (rolledBack.has(env.id)) refusals.push(`${serverName(env.id)}: ${(e as Error).message}`);
        else
          fail(
            `${serverName(env.id)} could not start (incarnation ${env.incarnation}): ${(e as Error).message}`,
          );
        return { onMessage: () => {} };
      }
    });
  for (let i = 0; i < L; i++)
    sim.addNode((env) => {
      if (env.incarnation > 0) leafRestarts++;
      return leafNode(
        { seed, suite, servers: S, ledger, nextLink: () => ++links, fail, observer, ca, serverSerials },
        env,
        leafName(i),
        certs[i]!.serial,
        leafHandles,
      );
    });
  const adversaryHandles = new Map<number, AdversaryHandle>();
  for (let a = 0; a < A; a++)
    sim.addNode((env) => adversaryNode({ seed, nextLink: () => ++links, fail }, env, a, adversaryHandles));

  const checkLeaf = (i: number): number => {
    if (!Number.isSafeInteger(i) || i < 0 || i >= L) throw new RangeError(`no leaf ${i} (of ${L})`);
    return S + i;
  };
  const checkServer = (i: number): number => {
    if (!Number.isSafeInteger(i) || i < 0 || i >= S) throw new RangeError(`no server ${i} (of ${S})`);
    return i;
  };
  const checkAdversary = (a: number): number => {
    if (!Number.isSafeInteger(a) || a < 0 || a >= A) throw new RangeError(`no adversary ${a} (of ${A})`);
    return S + L + a;
  };
  const liveServers = (): ServerHandle[] =>
    serverHandles.filter(
      (h, id): h is ServerHandle =>
        h !== undefined && sim.isUp(id) && !sim.isPaused(id) && !ca.isRevoked(serverSerials[id]!),
    );

  return {
    sim,
    ledger,
    servers: S,
    leaves: L,
    adversaries: A,
    attackWatch,
    errors,
    revokedSerials,
    get crashes() {
      return crashes;
    },
    get leafRestarts() {
      return leafRestarts;
    },
    server: (i) => serverHandles[checkServer(i)],
    leaf: (i) => leafHandles.get(checkLeaf(i))!,
    leafNodeId: checkLeaf,
    leafCert: (i) => certs[checkLeaf(i) - S]!,
    liveServers,
    tapLeafFrames: (fn) => void taps.push(fn),
    connect: (i, server) => leafHandles.get(checkLeaf(i))!.connect(checkServer(server)),
    leave: (i) => leafHandles.get(checkLeaf(i))!.leave(),
    revoke: (i) => {
      const serial = certs[checkLeaf(i) - S]!.serial;
      if (revokedSerials.has(serial)) return false;
      revokedSerials.add(serial);
      ca.revoke([serial], wallClock(sim.now));
      loadCrl(new Set([serial]), []);
      return true;
    },
    revokeServer: (r) => {
      const serial = serverSerials[checkServer(r)]!;
      if (ca.isRevoked(serial)) return false;
      frozenCrl.set(r, ca.current);
      ca.revoke([serial], wallClock(sim.now));
      loadCrl(new Set([serial]), [{ name: serverName(r), serial }]);
      return true;
    },
    ca,
    crashServer: (i, disk) => {
      if (disk !== undefined) crashPlans.set(checkServer(i), disk);
      sim.crash(checkServer(i));
    },
    restartServer: (i) => sim.restart(checkServer(i)),
    failStorage: (i, op) => storages[checkServer(i)]!.failNext(op),
    get storageStops() {
      return storageStops;
    },
    get rollbacks() {
      return rollbacks;
    },
    startRefusals: refusals,
    publish: (i, data) => leafHandles.get(checkLeaf(i))!.publish(data),
    attack: (a, script, victim) => {
      const victimName = victim === undefined ? undefined : leafName(checkLeaf(victim) - S);
      adversaryHandles.get(checkAdversary(a))!.attack({
        ...script,
        server: checkServer(script.server),
        victimRenewal: () => (victimName === undefined ? undefined : renewals.get(victimName)),
      });
    },
    adversary: (a) => adversaryHandles.get(checkAdversary(a))!,
  };
}
