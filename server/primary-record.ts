/**
 * The durable primary component of one server (data dir file `primary`): what its name knows of
 * the primary sequence (the last primary view, every newer primary attempt it took part in) and
 * the version of the committed leaf state it holds. Written whole, atomically and durably
 * (Storage.replace: temp file, fsync, rename, fsync of the directory).
 *
 * State version = [generation, step, applied, extra]: the cluster generation and primary step of
 * the primary view whose installation the state starts from (every member of a primary view
 * holds the same state when it installs it), the commands this replica applied in that view
 * since as a prefix of the view's total order (the store's command index minus its index when
 * the view was installed), and the commands it applied after a gap in that order (a flush that
 * skipped a message another component may hold: Delivery.afterGap; the gap's position is made
 * durable before any command after it). Replicas with equal versions and no extra hold equal
 * states; a larger version holds every change of a smaller one's prefix, so the stack's merge
 * keeps the largest (gms.ts) and a branch loses to the prefix it skipped.
 *
 * The order of writes keeps the recorded version at most the true one after any crash: a
 * primary view's record is written before any of its commands is applied, and a transferred
 * state is recorded right after the store compacted it (a crash in between leaves the older
 * version, which only makes this server adopt a state at least as new as the one it holds).
 *
 * Generation: a `generation` larger than the record's is the operator's disaster-recovery step
 * (a majority of the last primary view is lost for good): the record's knowledge of the primary
 * sequence is dropped, loudly, and the new generation's genesis (a majority of every configured
 * server) decides; the state keeps its old-generation version, so among the servers present the
 * newest state still wins.
 */
import { join } from 'node:path';
import { SECRET_FILE_MODE } from '../auth/index.js';
import { StorageError, type Storage } from '../leaf-plane/index.js';
import type { MembershipMemory, PrimaryKnowledge, PrimaryRef, StateVersion } from '../core-group/index.js';
import { isMemberKey, MAX_MEMBERS, versionText } from '../core-group/index.js';
import { MAX_ATTEMPTS } from '../core-group/index.js';
import { ServerStartError } from './boot.js';
import type { Logger } from './log.js';

const FILE = 'primary';
const FORMAT = 1;
/** The record is a few KiB at most (≤ MAX_ATTEMPTS + 1 views of ≤ MAX_MEMBERS keys). */
const MAX_FILE_BYTES = 256 * 1024;

interface StateBase {
  readonly generation: number;
  readonly step: number;
  /** Store command index when this state was at `applied` = 0 (negative after a transfer to a younger store). */
  readonly base: number;
  /** Commands applied (since `base`) before a gap in the view's total order, if there was one. */
  readonly gapAt?: number;
}

interface RecordFile {
  readonly format: number;
  readonly generation: number;
  readonly knowledge: PrimaryKnowledge | null;
  readonly state: StateBase;
}

export class PrimaryRecord implements MembershipMemory {
  private knowledge: PrimaryKnowledge | undefined;
  private state: StateBase;

  private constructor(
    private readonly storage: Storage,
    readonly path: string,
    private readonly generation: number,
    knowledge: PrimaryKnowledge | undefined,
    state: StateBase,
  ) {
    this.knowledge = knowledge;
    this.state = state;
  }

  /**
   * Reads the record (or starts one). `storeIndex` is the leaf store's command index. A data dir
   * without a record starts at [generation, 0, leafEpoch, 0]: a first boot at [generation, 0, 0,
   * 0]; a data dir written by a version without the record (an upgrade: every server restarts
   * with it at once, since the core wire format changed) ranks by its leaf epoch, so a server
   * that missed batches does not hand its registry to the others.
   */
  static open(
    storage: Storage,
    dataDir: string,
    generation: number,
    storeIndex: number,
    log: Logger,
    leafEpoch = 0,
  ): PrimaryRecord {
    const path = join(dataDir, FILE);
    const bytes = readRecord(storage, path);
    if (bytes === undefined) {
      const state = { generation, step: 0, base: storeIndex - leafEpoch };
      const rec = new PrimaryRecord(storage, path, generation, undefined, state);
      if (storeIndex > 0)
        log.info(
          'no primary record in this data dir (first start of this version): state ranked by its leaf epoch',
          {
            path,
            leafEpoch,
          },
        );
      rec.write();
      return rec;
    }
    const file = parseRecord(path, bytes);
    if (file.generation > generation)
      throw new ServerStartError(
        `generation: ${generation} is older than this data dir's (${file.generation}, in ${path})`,
      );
    if (storeIndex < file.state.base)
      throw new ServerStartError(
        `dataDir: ${path} records a state after command ${file.state.base}, the leaf store ends at ${storeIndex} (leaf-state/ restored or removed? remove ${path} too: the server then starts as a member without memory, which the others must outvote)`,
      );
    let knowledge = file.knowledge ?? undefined;
    if (file.generation < generation) {
      log.error('DISASTER RECOVERY: generation raised; the last primary view is forgotten', {
        path,
        from: file.generation,
        to: generation,
        forgottenPrimary: knowledge?.lastPrimary.members ?? [],
        forgottenStep: knowledge?.lastPrimary.step ?? 0,
        stateVersion: versionText(
          new PrimaryRecord(storage, path, generation, undefined, file.state).stateVersion(storeIndex),
        ),
        consequence:
          'a majority of ALL configured servers now forms a primary view from the newest state among them; a server left out keeps a state that will be overwritten',
      });
      knowledge = undefined;
    }
    const rec = new PrimaryRecord(storage, path, generation, knowledge, file.state);
    if (file.generation < generation) rec.write();
    return rec;
  }

  // ── MembershipMemory (called by the stack) ──────────────────────────────────────────────

  load(): PrimaryKnowledge | undefined {
    return this.knowledge;
  }

  save(k: PrimaryKnowledge): void {
    this.knowledge = k;
    this.write();
  }

  // ── the state version ───────────────────────────────────────────────────────────────────

  stateVersion(storeIndex: number): StateVersion {
    const s = this.state;
    const applied = storeIndex - s.base;
    const prefix = s.gapAt === undefined ? applied : Math.min(applied, s.gapAt);
    return [s.generation, s.step, prefix, applied - prefix];
  }

  /** The next command (at `storeIndex` + 1) follows a gap in the view's total order. */
  gap(storeIndex: number): void {
    if (this.state.gapAt !== undefined) return;
    this.setState({ ...this.state, gapAt: storeIndex - this.state.base });
  }

  /** A primary view of `step` was installed with the store at `storeIndex`: its state is [generation, step, 0]. */
  primaryInstalled(step: number, storeIndex: number): void {
    if (this.state.generation === this.generation && this.state.step === step) return;
    this.setState({ generation: this.generation, step, base: storeIndex });
  }

  /** A transferred state of `version` is now the store's (compacted at `storeIndex`). */
  stateInstalled(version: StateVersion, storeIndex: number): void {
    const [generation, step, prefix, extra] = version;
    if (version.length !== 4 || !version.every((n) => Number.isSafeInteger(n) && n >= 0))
      throw new Error(`state transfer: malformed version ${versionText(version)}`);
    this.setState({
      generation: generation!,
      step: step!,
      base: storeIndex - prefix! - extra!,
      ...(extra! > 0 ? { gapAt: prefix! } : {}),
    });
  }

  private setState(next: StateBase): void {
    this.state = next;
    this.write();
  }

  private write(): void {
    const file: RecordFile = {
      format: FORMAT,
      generation: this.generation,
      knowledge: this.knowledge ?? null,
      state: this.state,
    };
    this.storage.replace(this.path, new TextEncoder().encode(`${JSON.stringify(file)}\n`), SECRET_FILE_MODE);
  }
}

/** The record's bytes (undefined: no record); one larger than MAX_FILE_BYTES is not read. */
function readRecord(storage: Storage, path: string): Uint8Array | undefined {
  try {
    return storage.read(path, MAX_FILE_BYTES);
  } catch (e) {
    if (e instanceof StorageError && e.code === 'too-large')
      throw new ServerStartError(`dataDir: ${path} is corrupt (too large)`);
    throw e;
  }
}

function parseRecord(path: string, bytes: Uint8Array): RecordFile {
  const corrupt = (why: string): ServerStartError =>
    new ServerStartError(`dataDir: ${path} is corrupt (${why})`);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw corrupt('not JSON');
  }
  const o = v as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || o.format !== FORMAT) throw corrupt('unknown format');
  const count = (x: unknown, what: string): number => {
    if (!Number.isSafeInteger(x) || (x as number) < 0) throw corrupt(`${what} is not a count`);
    return x as number;
  };
  // A transferred state may carry more commands than this store ever wrote: its base is then < 0.
  const integer = (x: unknown, what: string): number => {
    if (!Number.isSafeInteger(x)) throw corrupt(`${what} is not an integer`);
    return x as number;
  };
  const primaryRef = (x: unknown, what: string): PrimaryRef => {
    const p = x as Record<string, unknown>;
    if (typeof p !== 'object' || p === null) throw corrupt(`${what} is not an object`);
    const id = p.id as Record<string, unknown>;
    if (typeof id !== 'object' || id === null || typeof id.coord !== 'string')
      throw corrupt(`${what}.id is malformed`);
    if (id.coord !== '' && !isMemberKey(id.coord)) throw corrupt(`${what}.id.coord is not a member`);
    const members = p.members;
    if (
      !Array.isArray(members) ||
      members.length > MAX_MEMBERS ||
      !members.every((m) => typeof m === 'string' && isMemberKey(m))
    )
      throw corrupt(`${what}.members is malformed`);
    return {
      step: count(p.step, `${what}.step`),
      id: { epoch: count(id.epoch, `${what}.id.epoch`), coord: id.coord },
      members: members as string[],
    };
  };
  let knowledge: PrimaryKnowledge | null = null;
  if (o.knowledge !== null) {
    const k = o.knowledge as Record<string, unknown>;
    if (typeof k !== 'object' || !Array.isArray(k.attempts) || k.attempts.length > MAX_ATTEMPTS)
      throw corrupt('knowledge is malformed');
    knowledge = {
      lastPrimary: primaryRef(k.lastPrimary, 'knowledge.lastPrimary'),
      attempts: k.attempts.map((a, i) => primaryRef(a, `knowledge.attempts[${i}]`)),
    };
  }
  const s = o.state as Record<string, unknown>;
  if (typeof s !== 'object' || s === null) throw corrupt('state is malformed');
  return {
    format: FORMAT,
    generation: count(o.generation, 'generation'),
    knowledge,
    state: {
      generation: count(s.generation, 'state.generation'),
      step: count(s.step, 'state.step'),
      base: integer(s.base, 'state.base'),
      ...(s.gapAt !== undefined ? { gapAt: count(s.gapAt, 'state.gapAt') } : {}),
    },
  };
}
