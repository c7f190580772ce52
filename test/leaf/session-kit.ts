/**
 * A scripted core for driving LeafSession without sockets: the real leaf state machine (real
 * keytree, real signed batches) and the frames a server puts on the wire. Shared by the session
 * unit tests and the adversary tests that replay or forge server frames.
 */
import { concatBytes, type CipherSuite } from '../../crypto/index.js';
import { encodeWelcome } from '../../keytree/index.js';
import {
  encodeLeafFrame,
  type LeafFrameBody,
  type LeafFrameType,
  type RekeyPush,
} from '../../gossip-edge/index.js';
import { LeafStateMachine, RekeyHistory, signBatch } from '../../leaf-plane/index.js';
import { LeafSession, type LeafSessionEffect, type LeafSessionOptions } from '../../leaf-sdk/index.js';

export const LEASE_MS = 3000;
export const SERVER = 'g/core/a';

/** One core server's view: the real leaf state machine, its signed rekey history. */
export class Core {
  readonly machine: LeafStateMachine;
  readonly history = new RekeyHistory(16);
  readonly seed = new Uint8Array(32).fill(7);
  readonly publicKey: Uint8Array;
  private serial = 0;

  constructor(
    private readonly suite: CipherSuite,
    now: number,
  ) {
    this.machine = new LeafStateMachine({
      suite: this.suite,
      group: new TextEncoder().encode('g'),
      secret: new Uint8Array(32).fill(1),
      leaseMs: LEASE_MS,
      checkInvariants: true,
    });
    this.machine.setPrimary(true);
    this.publicKey = this.suite.ed25519PublicKey(this.seed);
    this.cut(now);
  }

  admit(name: string, now: number): void {
    this.serial++;
    const fingerprint = new Uint8Array(32).fill(this.serial);
    this.machine.apply({
      kind: 'admit',
      value: { name, serial: this.serial.toString(16), fingerprint, now },
    });
  }

  /** Cuts a batch; the signed push of its epoch as the server sends it to `slot`. */
  cut(now: number, slot?: number): RekeyPush | undefined {
    const { batch } = this.machine.apply({ kind: 'cutBatch', value: { epoch: this.machine.epoch + 1, now } });
    if (batch === undefined) return undefined;
    this.history.record(batch, this.publicKey, signBatch(this.suite, this.seed, batch));
    return slot === undefined ? undefined : this.history.pushFor(batch.epoch, slot)?.push;
  }

  welcome(name: string): Uint8Array {
    const entry = this.machine.entry(name)!;
    return wire('welcome', {
      welcome: encodeWelcome(this.machine.welcomeFor(name)!),
      epoch: this.machine.epoch,
      admittedEpoch: entry.admittedEpoch,
      memberId: entry.memberId,
      leaseMs: LEASE_MS,
      signers: [{ name: 'a', publicKey: this.publicKey, serial: 'aa' }],
      crls: [],
    });
  }

  slotOf(name: string): number {
    return this.machine.entry(name)!.slot;
  }

  /** The key id a leaf holding this epoch's group key reports (what the core knows). */
  keyId(): string {
    const key = this.machine.groupKey()!;
    const id = this.suite
      .sha256(concatBytes(new TextEncoder().encode('keyglass key id v1'), key))
      .subarray(0, 8);
    return Buffer.from(id).toString('hex');
  }
}

/** A frame as the server puts it on the wire (the session decodes it). */
export const wire = <K extends LeafFrameType>(type: K, body: LeafFrameBody<K>): Uint8Array =>
  encodeLeafFrame(type, body);

export const of = <T extends LeafSessionEffect['type']>(effects: readonly LeafSessionEffect[], type: T) =>
  effects.filter((e): e is Extract<LeafSessionEffect, { type: T }> => e.type === type);
export const sent = (effects: readonly LeafSessionEffect[]) => of(effects, 'send').map((e) => e.frameType);

/** A session linked to `core` and welcomed as `name` at `now`. */
export function welcomed(
  suite: CipherSuite,
  core: Core,
  name: string,
  now: number,
  opts: Partial<LeafSessionOptions> = {},
): { session: LeafSession; effects: LeafSessionEffect[] } {
  const session = new LeafSession({ suite, ...opts });
  const up = session.handle(
    { type: 'linkUp', link: { server: SERVER, exportKeyingMaterial: () => undefined } },
    now,
  );
  if (!sent(up).includes('join')) throw new Error('no join on link up');
  core.admit(name, now);
  core.cut(now);
  return { session, effects: session.handle({ type: 'frame', frame: core.welcome(name) }, now) };
}
