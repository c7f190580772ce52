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

/** Strictly more than half of `of` are in `members`. */
export function holdsMajority(members: ReadonlySet<MemberKey>, of: readonly MemberKey[]): boolean {
  let n = 0;
  for (const m of of) if (members.has(m)) n++;
  return 2 * n > of.length;
}
