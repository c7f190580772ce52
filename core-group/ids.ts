/**
 * Identities of the core group.
 *
 * A member is a process incarnation: a stable `name` (the transport address, e.g. a server's
 * certificate CN) plus an `incarnation` number that grows on every restart or rejoin. Inside
 * the stack a member is its key string `name#incarnation`, so maps and sets need no custom
 * equality. A view is named by (epoch, coordinator key); view ids are totally ordered, which is
 * how stale proposals and installs are recognised and ignored.
 */

/** `name#incarnation`. */
export type MemberKey = string;

/** Names are transport addresses: short, printable, no '#'. */
export const MAX_NAME_BYTES = 64;
/** Largest group the codecs accept (views, proposals, vectors). */
export const MAX_MEMBERS = 256;
const NAME_RE = /^[A-Za-z0-9._:-]{1,64}$/;

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

export function memberKey(name: string, incarnation: number): MemberKey {
  if (!isValidName(name)) throw new RangeError(`invalid member name: ${JSON.stringify(name)}`);
  if (!Number.isSafeInteger(incarnation) || incarnation < 0)
    throw new RangeError(`bad incarnation ${incarnation}`);
  return `${name}#${incarnation}`;
}

export function nameOf(key: MemberKey): string {
  const i = key.lastIndexOf('#');
  return i < 0 ? key : key.slice(0, i);
}

export function incarnationOf(key: MemberKey): number {
  return Number(key.slice(key.lastIndexOf('#') + 1));
}

/** True if `key` is a well-formed member key (used by decoders). */
export function isMemberKey(key: string): boolean {
  const i = key.lastIndexOf('#');
  if (i <= 0) return false;
  const inc = key.slice(i + 1);
  return (
    isValidName(key.slice(0, i)) && /^(0|[1-9][0-9]{0,15})$/.test(inc) && Number.isSafeInteger(Number(inc))
  );
}

export interface ViewId {
  readonly epoch: number;
  /** The member that proposed (and coordinates) the view. */
  readonly coord: MemberKey;
}

export function compareViewId(a: ViewId, b: ViewId): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  return a.coord < b.coord ? -1 : a.coord > b.coord ? 1 : 0;
}

export function sameViewId(a: ViewId, b: ViewId): boolean {
  return a.epoch === b.epoch && a.coord === b.coord;
}

export function viewIdText(v: ViewId): string {
  return `${v.epoch}@${v.coord}`;
}

/**
 * A primary view, as remembered by the members that installed (or prepared) it: the step is
 * its position in the primary sequence (the genesis pseudo-view is step 0).
 */
export interface PrimaryRef {
  readonly step: number;
  readonly id: ViewId;
  readonly members: readonly MemberKey[];
}

export interface View {
  readonly id: ViewId;
  /** Members, oldest (most senior) first; members[0] coordinates and sequences. */
  readonly members: readonly MemberKey[];
  /** True iff this view may change replicated state. */
  readonly primary: boolean;
  /** The last primary view at or before this one (this view itself when primary). */
  readonly lastPrimary: PrimaryRef;
}

/** The genesis pseudo-primary: the founders' first incarnations. */
export function genesisPrimary(founders: readonly MemberKey[]): PrimaryRef {
  return { step: 0, id: { epoch: 0, coord: '' }, members: [...founders] };
}

/**
 * Strictly more than half of `of` are in `members`, counted BY NAME: a name's knowledge of the
 * primary sequence (its last primary view and primary attempts) is durable, so a restarted or
 * rejoined incarnation speaks for the name as its predecessor did (see gms, MembershipMemory).
 */
export function holdsMajority(members: ReadonlySet<MemberKey>, of: readonly MemberKey[]): boolean {
  const names = new Set<string>();
  for (const m of members) names.add(nameOf(m));
  const counted = new Set<string>();
  for (const m of of) if (names.has(nameOf(m))) counted.add(nameOf(m));
  const total = new Set(of.map(nameOf)).size;
  return 2 * counted.size > total;
}

/**
 * Version of the application's committed state, compared element by element (e.g. [cluster
 * generation, primary step the state was installed at, commands applied since]). Members that
 * hold equal versions hold equal states; the newest version of a merge is the state kept.
 */
export type StateVersion = readonly number[];

/** Longest StateVersion the codecs accept. */
export const MAX_VERSION_PARTS = 4;

export function compareVersion(a: StateVersion, b: StateVersion): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function versionText(v: StateVersion): string {
  return v.join('.');
}

/**
 * What a name knows of the primary sequence, kept across incarnations: the last primary view it
 * installed (or learned of) and every primary attempt newer than that it took part in. Dynamic
 * voting is safe across restarts only if this survives them (gms.ts, "Durable knowledge").
 */
export interface PrimaryKnowledge {
  readonly lastPrimary: PrimaryRef;
  readonly attempts: readonly PrimaryRef[];
}

/** The host's durable store of PrimaryKnowledge; `save` returns only once the record is durable. */
export interface MembershipMemory {
  load(): PrimaryKnowledge | undefined;
  save(k: PrimaryKnowledge): void;
}
