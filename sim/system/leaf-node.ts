/**
 * One leaf as a simulator node: the host of the REAL LeafSession (leaf-sdk/session.ts), as
 * leaf-sdk/leaf-client.ts hosts it over TLS — here over a simulated link to one core server at a
 * time. The host only carries effects: frames to the linked server, the session's timers on the
 * simulator, and failover (a link that ends, or a join that fails, is followed after a short
 * backoff by a link to the next server). A restart is a new leaf process (a fresh session under the
 * same certificate). TLS-only: no gossip (a `gossip` command's key is wiped).
 * In-band CRLs are verified against the sim CA (ca.ts), and a handshake with a server whose
 * certificate the session's CRLs revoke is refused, as LeafClient's TLS verifier does.
 */
import type { CipherSuite } from '../../crypto/index.js';
import {
  LeafSession,
  type LeafSessionEffect,
  type LeafSessionEvent,
  type LeafTimer,
} from '../../leaf-sdk/index.js';
import type { NodeEnv, NodeHandlers, TimerHandle } from '../../net/sim/index.js';
import type { SystemLedger } from './ledger.js';
import type { SimCa } from './ca.js';
import type { VerifiedCrl } from '../../auth/index.js';
import type { SystemObserver } from './world.js';
import {
  SIM_GROUP,
  frameOrder,
  wallClock,
  linkExporter,
  serverName,
  type SystemMessage,
} from './messages.js';

/** A TLS handshake not answered within this long is abandoned (the next server is tried). */
const HANDSHAKE_TIMEOUT_MS = 1_000;
const WELCOME_TIMEOUT_MS = 3_000;

export interface LeafWorld {
  readonly seed: number;
  readonly suite: CipherSuite;
  readonly servers: number;
  readonly ledger: SystemLedger;
  /** Link numbers are unique in the run (both ends derive the link's exporter from it). */
  nextLink(): number;
  fail(detail: string): void;
  readonly observer: SystemObserver;
  /** The CA: it verifies in-band CRLs and issued the servers' certificates. */
  readonly ca: SimCa;
  /** Core servers' certificate serials, by server index. */
  readonly serverSerials: readonly string[];
}

export type LeafState = 'idle' | 'linking' | 'up' | 'left' | 'evicted';

/** What the harness drives and reads of a leaf. */
export interface LeafHandle {
  readonly name: string;
  readonly session: LeafSession;
  /** The server linked now (the link is up), if any. */
  readonly server: number | undefined;
  readonly state: LeafState;
  /** Starts linking (to `server` first). */
  connect(server: number): void;
  /** Leaves the group: the leave frame on the live link, then the session ends ('closed'). */
  leave(): void;
  /** Links this process opened (the first, then one per fail-over or retry). */
  readonly linksOpened: number;
  /** Group messages the session opened and delivered (its 'message' effects), this process. */
  readonly messagesReceived: number;
  /** LeafSession.publish on the live link; false: not sent (not up, or the publish window is full). */
  publish(data: Uint8Array): boolean;
}

export function leafNode(
  w: LeafWorld,
  env: NodeEnv<SystemMessage>,
  name: string,
  serial: string,
  handles: Map<number, LeafHandle>,
): NodeHandlers<SystemMessage> {
  const now = (): number => wallClock(env.now());
  const session = new LeafSession({ suite: w.suite, welcomeTimeoutMs: WELCOME_TIMEOUT_MS });
  const timers = new Map<LeafTimer, TimerHandle>();
  let state: LeafState = 'idle';
  /** The current link: its number, its server, whether the handshake completed. */
  let link:
    | {
        no: number;
        server: number;
        up: boolean;
        handshake: TimerHandle | undefined;
        sent: number;
        received: number;
      }
    | undefined;
  let nextServer = 0;
  let reconnect: TimerHandle | undefined;
  let messagesReceived = 0;
  let linksOpened = 0;

  const guard = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      w.fail(`${name} at ${env.now()} ms: ${(e as Error).stack}`);
    }
  };
  const feed = (event: LeafSessionEvent): void => run(session.handle(event, now()));
  const run = (effects: readonly LeafSessionEffect[]): void => {
    for (const e of effects) effect(e);
  };

  /** The link ends here (the session is told; the server too, if `tellServer`); failover follows. */
  const endLink = (tellServer: boolean, why: string): void => {
    const l = link;
    if (l === undefined) return;
    link = undefined;
    if (l.handshake !== undefined) env.cancelTimer(l.handshake);
    if (tellServer) env.send(l.server, { kind: 'close', link: l.no });
    feed({ type: 'linkDown', error: new Error(why) });
    if (state === 'linking' || state === 'up') {
      state = 'linking';
      scheduleLink(50 + env.rng.int(200));
    }
  };
  const scheduleLink = (afterMs: number): void => {
    if (reconnect !== undefined) env.cancelTimer(reconnect);
    reconnect = env.setTimer(afterMs, () => {
      reconnect = undefined;
      guard(openLink);
    });
  };
  const openLink = (): void => {
    if (state !== 'linking' || link !== undefined) return;
    const server = nextServer;
    nextServer = (nextServer + 1) % w.servers;
    const no = w.nextLink();
    const handshake = env.setTimer(HANDSHAKE_TIMEOUT_MS, () =>
      guard(() => {
        if (link?.no === no && !link.up) endLink(true, 'handshake timeout');
      }),
    );
    link = { no, server, up: false, handshake, sent: 0, received: 0 };
    linksOpened++;
    env.send(server, { kind: 'open', link: no });
  };

  const effect = (e: LeafSessionEffect): void => {
    switch (e.type) {
      case 'send': {
        const sent =
          link?.up === true &&
          env.send(link.server, { kind: 'frame', link: link.no, seq: link.sent++, bytes: e.bytes });
        if (sent) w.observer.leafFrame?.(name, true, e.bytes, env.now());
        if (!sent)
          feed({
            type: 'sendFailed',
            frameType: e.frameType,
            ...(e.seq !== undefined ? { seq: e.seq } : {}),
          });
        return;
      }
      case 'dropLink':
        return endLink(true, e.reason.message);
      case 'joinFailed':
        return endLink(true, e.error.message);
      case 'setTimer': {
        const old = timers.get(e.timer);
        if (old !== undefined) env.cancelTimer(old);
        timers.set(
          e.timer,
          env.setTimer(e.afterMs, () =>
            guard(() => {
              timers.delete(e.timer);
              feed({ type: 'timer', timer: e.timer });
            }),
          ),
        );
        return;
      }
      case 'cancelTimer': {
        const old = timers.get(e.timer);
        if (old !== undefined) env.cancelTimer(old);
        timers.delete(e.timer);
        return;
      }
      case 'welcomed':
        if (state === 'linking') state = 'up'; // a leaf that left meanwhile stays gone
        w.ledger.welcomed(name, session.admissionEpoch!);
        return;
      case 'key':
        w.observer.leafKey?.(name, e.epoch, env.now());
        return w.ledger.leafKey(name, e.epoch, e.keyId, session.admissionEpoch);
      case 'evicted':
        w.ledger.toldEvicted(name, serial, e.reason, session.admissionEpoch);
        w.observer.leafEvicted?.(name, e.reason, env.now());
        state = 'evicted';
        shutdown('evicted');
        return;
      case 'gossip':
        if (e.command.op === 'installKey') e.command.groupKey.fill(0);
        return;
      case 'verifyCrls': {
        // The host verifies in-band CRLs against its trust anchor (here: the sim CA's issued list).
        const verified: VerifiedCrl[] = [];
        const invalid: string[] = [];
        for (const der of e.ders) {
          const v = w.ca.verify(der);
          if (typeof v === 'string') invalid.push(v);
          else verified.push(v);
        }
        return feed({ type: 'crlsVerified', verified, invalid });
      }
      case 'message':
        messagesReceived++;
        w.observer.leafMessage?.(name, e.sender, e.seq, env.now());
        return;
      case 'refused':
      case 'drain':
      case 'error':
        return;
    }
  };

  const shutdown = (next: 'closed' | 'evicted'): void => {
    const l = link;
    link = undefined;
    if (l !== undefined) env.send(l.server, { kind: 'close', link: l.no });
    if (reconnect !== undefined) env.cancelTimer(reconnect);
    for (const t of timers.values()) env.cancelTimer(t);
    timers.clear();
    feed({ type: 'shutdown', state: next });
  };

  const handle: LeafHandle = {
    name,
    session,
    get server() {
      return link?.up === true ? link.server : undefined;
    },
    get state() {
      return state;
    },
    get linksOpened() {
      return linksOpened;
    },
    get messagesReceived() {
      return messagesReceived;
    },
    connect: (server) =>
      guard(() => {
        if (state !== 'idle') return;
        state = 'linking';
        nextServer = server % w.servers;
        openLink();
      }),
    leave: () =>
      guard(() => {
        if (state === 'left' || state === 'evicted') return;
        if (state === 'up') feed({ type: 'leave' });
        state = 'left';
        // The link closes a moment after the leave frame (a reordering network must not lose it).
        env.setTimer(300, () => guard(() => shutdown('closed')));
      }),
    publish: (data) => {
      let sent = false;
      guard(() => {
        if (state !== 'up' || !session.welcomed) return;
        const r = session.publish(data, now());
        sent = r.sent;
        run(r.effects);
      });
      return sent;
    },
  };
  handles.set(env.id, handle);
  // A restarted leaf process holds nothing (a LeafSession keeps no state on disk): it joins afresh
  // under the same certificate, and the registry replaces its old admission.
  if (env.incarnation > 0) env.setTimer(env.rng.int(100), () => handle.connect(env.rng.int(w.servers)));

  return {
    onMessage: (from, msg) =>
      guard(() => {
        if (link === undefined || from !== link.server || !('link' in msg) || msg.link !== link.no) return;
        switch (msg.kind) {
          case 'accept':
            if (link.up) return;
            // The TLS verifier refuses a server certificate the CRLs the session holds revoke.
            if (session.revocation.isRevokedSerial(w.serverSerials[link.server]!))
              return endLink(true, `the certificate of ${serverName(link.server)} is revoked`);
            link.up = true;
            if (link.handshake !== undefined) env.cancelTimer(link.handshake);
            link.handshake = undefined;
            {
              const no = link.no;
              feed({
                type: 'linkUp',
                link: {
                  server: `keyglass://${SIM_GROUP}/core/${serverName(link.server)}`,
                  accepted: w.ca.acceptedServer(serverName(link.server), w.serverSerials[link.server]!),
                  exportKeyingMaterial: (length, label) =>
                    link?.no === no ? linkExporter(w.suite, w.seed, no, length, label) : undefined,
                },
              });
            }
            return;
          case 'frame': {
            if (!link.up) return;
            const order = frameOrder(msg.seq, link.received);
            if (order === 'broken') return endLink(true, 'frame lost: the link broke');
            if (order === 'deliver') {
              link.received++;
              w.observer.leafFrame?.(name, false, msg.bytes, env.now());
              feed({ type: 'frame', frame: msg.bytes });
            }
            return;
          }
          case 'close':
            return endLink(false, 'closed by the server');
          default:
            return;
        }
      }),
  };
}
