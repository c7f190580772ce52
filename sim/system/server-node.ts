/**
 * One core key server as a simulator node: the host of the REAL stack (GroupMember, core key on)
 * and the REAL leaf plane (ServerPlane + LeafEdge + LeafStateMachine + LeafStore, PrimaryRecord)
 * over a MemoryStorage that outlives the node's incarnations. It does what server/key-server.ts
 * does with sockets and timers, over the simulator: every stack upcall, leaf frame and timer goes
 * to the plane with the virtual time; the plane's effects go to the simulated network. No
 * protocol logic here. A restart reopens the store and the record from the storage after its
 * crash (MemoryStorage.crash: unsynced bytes lost, kept or torn).
 */
import type { CipherSuite } from '../../crypto/index.js';
import { LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL } from '../../keytree/index.js';
import {
  GroupMember,
  memberKey,
  type CoreKeyConfig,
  type CoreKeyInfo,
  type Delivery,
  type GroupApp,
  type MemberKey,
  type StateVersion,
  type View,
} from '../../core-group/index.js';
import {
  LeafStateMachine,
  LeafStore,
  ServerPlane,
  isStoreFailure,
  type LeafCert,
  type PlaneMetrics,
  type PlaneStore,
  type PlaneTimer,
} from '../../leaf-plane/index.js';
import type { VerifiedCrl } from '../../auth/index.js';
import { DEFAULT_BATCH_INTERVAL_MS, PrimaryRecord, type Logger } from '../../server/index.js';
import { Rng } from '../../net/sim/index.js';
import type { NodeEnv, NodeHandlers } from '../../net/sim/index.js';
import type { CrashPlan, MemoryStorage } from '../memory-storage.js';
import { SystemLedger } from './ledger.js';
import type { SystemObserver } from './world.js';
import {
  SIM_GROUP,
  wallClock,
  linkExporter,
  seededSuite,
  serverIdentityOf,
  serverName,
  frameOrder,
  type SystemMessage,
} from './messages.js';

/** Incarnations: the simulator's restart counter in the high bits, the stack's rejoins in the low bits (as sim/core). */
export const INCARNATION_STRIDE = 1 << 20;
/** The cluster generation of the primary record (one cluster, never recovered by hand). */
const GENERATION = 1;
const DATA_DIR = '/data';

export const silentLog: Logger = { debug() {}, info() {}, warn() {}, error() {} };
/** Counters, gauges and histograms that count nothing: the plane needs no prom-client. */
const noMetrics = new Proxy({} as PlaneMetrics, { get: () => ({ inc() {}, set() {}, observe() {} }) });

export interface ServerWorld {
  readonly seed: number;
  readonly suite: CipherSuite;
  readonly servers: number;
  readonly leaseMs: number;
  readonly leafKeyRefreshMs: number;
  readonly storages: readonly MemoryStorage[];
  readonly ledger: SystemLedger;
  /** Core identity seeds of the servers (their Ed25519 verify keys are public to all). */
  readonly identitySeeds: readonly Uint8Array[];
  readonly verifyKeys: ReadonlyMap<string, Uint8Array>;
  /** The leaf certificate presented by simulator node `node` (a leaf). */
  certOf(node: number): LeafCert;
  /** The CRL server `server` has loaded (its registry as the plane reads it; the sim CA's, ca.ts). */
  revocationOf(server: number): { installed(): VerifiedCrl[]; isRevokedSerial(serial: string): boolean };
  /** A failure the run must report (an exception out of the real code). */
  fail(detail: string): void;
  /**
   * A store write failed: the host stops, as KeyServer.fatal does (the process exits; a
   * supervisor starts it again, which reopens the store from what the disk holds).
   */
  stopped(server: number, error: Error): void;
  /** What the crash before incarnation `incarnation` of server `server` did to its disk (default: unsynced bytes meet a drawn fate). */
  crashPlan(server: number): CrashPlan;
  readonly observer: SystemObserver;
  /** Every frame the plane writes to a leaf link (to simulator node `node`), before the network. */
  sentToLeaf?(server: string, incarnation: number, node: number, bytes: Uint8Array, t: number): void;
}

/** What the harness reads of a live server (checkers, revocations). */
export interface ServerHandle {
  readonly member: GroupMember;
  readonly plane: ServerPlane;
  readonly machine: LeafStateMachine;
  /** Peers (leaf links) up here, by link number. */
  linkedLeaf(link: number): boolean;
  /** Runs `fn` as one event of this node (the plane's end-of-event timers run after it). */
  event(fn: () => void): void;
  /** Runs `fn` as an event of this node once it runs (a signal to a paused process waits for its resume). */
  signal(fn: () => void): void;
}

interface LeafLink {
  readonly link: number;
  readonly node: number;
  lastHeard: number;
  /** The plane closed it: what still arrives is not read (the socket is destroyed). */
  closing: boolean;
  /** Frames sent on the link, and received from it (frameOrder). */
  sent: number;
  received: number;
}

export function serverNode(
  w: ServerWorld,
  env: NodeEnv<SystemMessage>,
  handles: (ServerHandle | undefined)[],
): NodeHandlers<SystemMessage> {
  const now = (): number => wallClock(env.now());
  const id = env.id;
  const name = serverName(id);
  const storage = w.storages[id]!;
  // A restart comes back from what the crash left of the storage.
  if (env.incarnation > 0) storage.crash(w.crashPlan(id));
  const suite = seededSuite(
    w.suite,
    Rng.seeded(w.seed).fork('server-random').fork(`${id}/${env.incarnation}`),
  );
  storage.ensureDir(DATA_DIR, 0o700);
  const machine = new LeafStateMachine({
    suite,
    group: new TextEncoder().encode(SIM_GROUP),
    secret: suite.randomBytes(32),
    leaseMs: w.leaseMs,
  });
  const store = LeafStore.openForServer(storage, `${DATA_DIR}/leaf-state`, machine, { suite });
  const record = PrimaryRecord.open(storage, DATA_DIR, GENERATION, store.index, silentLog, machine.epoch);
  const { serial, signingSeed } = serverIdentityOf(w.seed, id);
  const revocation = w.revocationOf(id);
  const serverSerials = Array.from({ length: w.servers }, (_, i) => serverIdentityOf(w.seed, i).serial);

  // The store as the plane sees it, observed: every batch a replica applies goes to the ledger.
  const observed: PlaneStore = {
    get index() {
      return store.index;
    },
    commit: (commands) => {
      const revoked = SystemLedger.revokeTargets(machine, commands);
      const before = w.ledger.stateOf(machine);
      const results = store.commit(commands);
      w.ledger.committed(name, machine, commands, results, revoked, before);
      w.observer.committed?.(name, commands, results, machine, env.now());
      return results;
    },
    compact: () => store.compact(),
    sync: () => store.sync(),
  };

  const links = new Map<string, LeafLink>();
  const peerOf = (link: number): string => `${SIM_GROUP}/leaf/${link}`;
  // 'end-of-event' timers (group commit) run before any other event: after the current one.
  const endOfEvent: PlaneTimer[] = [];
  let stopped = false;
  const event = (fn: () => void): void => {
    if (stopped) return;
    try {
      fn();
      while (endOfEvent.length > 0) plane.onTimer(endOfEvent.shift()!, now());
    } catch (e) {
      // A failed store write stops the server (as KeyServer.guard/upcall → fatal); anything else is a bug.
      if (isStoreFailure(e)) {
        stopped = true;
        return w.stopped(id, e);
      }
      w.fail(`${name} at ${env.now()} ms: ${(e as Error).stack}`);
    }
  };
  const dropLink = (peer: string): void => {
    if (!links.delete(peer)) return;
    plane.leafDown(peer, now());
  };

  const plane = new ServerPlane(
    {
      name,
      suite,
      machine,
      store: observed,
      record,
      revocation,
      signingSeed,
      signingPublic: suite.ed25519PublicKey(signingSeed),
      serial,
      leaseMs: w.leaseMs,
      leafKeyRefreshMs: w.leafKeyRefreshMs,
      fullRefreshWindowMs: 60_000,
      exporter: (peer) => {
        const l = links.get(peer);
        return l === undefined
          ? undefined
          : linkExporter(w.suite, w.seed, l.link, LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL);
      },
      meshSerialOf: (peerName) => serverIdentityOf(w.seed, Number(peerName.slice(1))).serial,
      links: {
        send: (peer, bytes) => {
          const l = links.get(peer);
          if (l === undefined) return false;
          w.sentToLeaf?.(name, env.incarnation, l.node, bytes, env.now());
          return env.send(l.node, { kind: 'frame', link: l.link, seq: l.sent++, bytes });
        },
        // As a transport: the link closes, and its down is reported after the current event.
        disconnect: (peer) => {
          const l = links.get(peer);
          if (l === undefined || l.closing) return;
          l.closing = true;
          env.send(l.node, { kind: 'close', link: l.link });
          env.setTimer(0, () => event(() => dropLink(peer)));
        },
        remoteAddress: (peer) => (links.has(peer) ? `sim:${links.get(peer)!.node}` : undefined),
      },
      host: {
        multicast: (channel, payload) => member.multicast(channel, payload),
        setTimer: (timer, delay) => {
          if (delay === 'end-of-event') endOfEvent.push(timer);
          else env.setTimer(delay, () => event(() => plane.onTimer(timer, now())));
        },
        timed: (what, work) => {
          if (w.observer.timed === undefined) return work();
          const t0 = performance.now();
          try {
            return work();
          } finally {
            w.observer.timed(name, what, performance.now() - t0);
          }
        },
      },
      metrics: noMetrics,
      log: silentLog,
    },
    now(),
  );

  // The host loads its CRL at boot: what welcomes carry in band.
  plane.crlInstalled();

  const app: GroupApp = {
    view: (view: View, self: MemberKey) => {
      w.observer.view?.(name, view, env.now());
      plane.view(view, self, now());
    },
    deliver: (d: Delivery) => plane.deliver(d, now()),
    key: (info: CoreKeyInfo) => plane.key(info, now()),
    unicast: () => {},
    block: () => plane.block(now()),
    unblock: () => plane.unblock(now()),
    getState: () => plane.getState(now()),
    stateVersion: (): StateVersion => plane.stateVersion(),
    setState: (state, version) => {
      w.observer.stateTransfer?.(name, env.now());
      plane.setState(state, version, now());
    },
  };
  const keyRng = Rng.seeded(w.seed).fork('core-keys').fork(`${id}/${env.incarnation}`);
  const keys: CoreKeyConfig = {
    suite: seededSuite(w.suite, keyRng),
    identitySeed: w.identitySeeds[id]!,
    verifyKeyOf: (peerName) => w.verifyKeys.get(peerName),
    random: () => keyRng.next(),
    refreshMs: 2_000,
  };
  const names = Array.from({ length: w.servers }, (_, i) => serverName(i));
  const member = new GroupMember(
    {
      name,
      incarnation: (env.incarnation + 1) * INCARNATION_STRIDE,
      founders: names.map((n) => memberKey(n, INCARNATION_STRIDE)),
      peers: names,
      keys,
      memory: record,
    },
    {
      now: () => env.now(),
      send: (to, bytes) => {
        const peer = Number(to.slice(1));
        if (revocation.isRevokedSerial(serverSerials[peer]!)) return; // no TLS to it
        w.observer.coreSent?.(name, bytes.length);
        env.send(peer, { kind: 'core', bytes });
      },
    },
    app,
  );

  const handle: ServerHandle = {
    member,
    plane,
    machine,
    linkedLeaf: (link) => links.has(peerOf(link)),
    event,
    signal: (fn) => void env.setTimer(0, () => event(fn)),
  };
  handles[id] = handle;
  event(() => member.start());
  const tick = (): void => {
    event(() => {
      member.tick();
      plane.stackTick(now());
    });
    env.setTimer(member.tickMs, tick);
  };
  env.setTimer(env.rng.int(member.tickMs), tick);
  const batch = (): void => {
    event(() => plane.batchTick(now()));
    env.setTimer(DEFAULT_BATCH_INTERVAL_MS, batch);
  };
  env.setTimer(env.rng.int(DEFAULT_BATCH_INTERVAL_MS), batch);
  // A leaf link silent for a lease is dead (the leaf port's idle timeout): its session ends here.
  const sweep = (): void => {
    event(() => {
      for (const [peer, l] of links) if (now() - l.lastHeard > w.leaseMs) dropLink(peer);
    });
    env.setTimer(1_000, sweep);
  };
  env.setTimer(1_000, sweep);

  return {
    onMessage: (from, msg) =>
      event(() => {
        switch (msg.kind) {
          case 'core':
            // The core port's TLS verifier refuses a server our CRL revokes.
            if (revocation.isRevokedSerial(serverSerials[from]!)) return;
            return member.receive(msg.bytes);
          case 'open': {
            const peer = peerOf(msg.link);
            if (links.has(peer)) return;
            // The leaf port's TLS verifier refuses a certificate the CRL revokes.
            if (revocation.isRevokedSerial(w.certOf(from).serial))
              return void env.send(from, { kind: 'close', link: msg.link });
            links.set(peer, {
              link: msg.link,
              node: from,
              lastHeard: now(),
              closing: false,
              sent: 0,
              received: 0,
            });
            plane.leafCertificate(peer, w.certOf(from));
            env.send(from, { kind: 'accept', link: msg.link });
            return;
          }
          case 'frame':
          case 'frames': {
            const l = links.get(peerOf(msg.link));
            // A frame on a link this incarnation does not know: the connection is gone (an RST).
            if (l === undefined) return void env.send(from, { kind: 'close', link: msg.link });
            if (l.closing) return;
            l.lastHeard = now();
            const order = frameOrder(msg.seq, l.received);
            if (order === 'duplicate') return;
            if (order === 'broken') {
              env.send(from, { kind: 'close', link: msg.link });
              return dropLink(peerOf(msg.link));
            }
            l.received++;
            if (msg.kind === 'frame') return plane.leafMessage(peerOf(msg.link), msg.bytes, now());
            // One record of several frames: the plane may close the link after any of them.
            for (const bytes of msg.frames) {
              if (l.closing || links.get(peerOf(msg.link)) !== l) return;
              plane.leafMessage(peerOf(msg.link), bytes, now());
            }
            return;
          }
          case 'close':
            return dropLink(peerOf(msg.link));
          case 'accept':
            return;
        }
      }),
    onStop: () => {
      stopped = true;
      if (handles[id] === handle) handles[id] = undefined;
    },
  };
}
