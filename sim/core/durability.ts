/**
 * Durability of the simulated replicated state (issue 18): servers crash and restart with their
 * durable state (SimDisk: the app state and its version, and the stack's knowledge of the
 * primary sequence), sometimes all at once, and
 *   - committed-lost: once a strict majority of a primary view's names applied a change of that
 *     view (the change is acknowledged: every later primary must hold it, however the group
 *     fails), every later primary view (of a higher step) is installed with a state that
 *     contains it;
 *   - state-rollback: a state transfer never hands a member a state older than the one it held
 *     when it froze for the flush (primary or not);
 *   - state-version: two states of equal version (without changes after a gap) are equal:
 *     versions say which state is newer only if they name states.
 * States are hash chains (app.ts): `parent` links each state to the one before it, so
 * containment is a walk back along the chain.
 */
import type { MemberKey, PrimaryKnowledge, StateVersion } from '../../core-group/index.js';
import { compareVersion, nameOf, versionText } from '../../core-group/index.js';
import type { Violation } from './checkers.js';

/** What a simulated server keeps across a crash (synchronously durable). */
export interface SimDisk {
  knowledge: PrimaryKnowledge | undefined;
  state: number;
  count: number;
  /**
   * Version = [step, applied, extra]: the primary step the state was installed at, changes since
   * as a prefix of that view's total order, changes after a gap in it (Delivery.afterGap).
   */
  step: number;
  applied: number;
  extra: number;
}

export function newDisk(): SimDisk {
  return { knowledge: undefined, state: 0x12345678, count: 0, step: 0, applied: 0, extra: 0 };
}

/** A state of the chain: hash and length. */
export function stateKey(state: number, count: number): string {
  return `${state.toString(16)}/${count}`;
}

interface Ack {
  readonly t: number;
  readonly version: StateVersion;
  readonly state: string;
  readonly count: number;
}

const MAX_REPORTS = 5;

export class DurabilityLedger {
  /** state → the state before it. */
  private readonly parent = new Map<string, string>();
  private readonly byVersion = new Map<string, { state: string; by: MemberKey }>();
  /** version text → names of the view that applied it, and how many names the view has. */
  private readonly appliers = new Map<string, { names: Set<string>; of: number }>();
  /** Acknowledged changes, newest last (each contains the one before: checked as they come). */
  private readonly acks: Ack[] = [];
  private readonly reported = new Map<string, number>();
  readonly violations: Violation[] = [];
  acknowledged = 0;

  private report(property: Violation['property'], detail: string): void {
    const n = this.reported.get(property) ?? 0;
    this.reported.set(property, n + 1);
    if (n < MAX_REPORTS) this.violations.push({ property, detail });
  }

  /** `member` applied a change in primary view (members) from state `from` to `to`, now at `version`. */
  applied(
    t: number,
    member: MemberKey,
    members: readonly MemberKey[],
    from: string,
    to: string,
    count: number,
    version: StateVersion,
  ): void {
    this.parent.set(to, from);
    this.holds(member, version, to);
    if (version[2] !== 0) return; // a branch: only prefixes of a primary's order are acknowledged
    const v = versionText(version);
    let a = this.appliers.get(v);
    if (a === undefined) {
      a = { names: new Set(), of: new Set(members.map(nameOf)).size };
      this.appliers.set(v, a);
    }
    const before = a.names.size;
    a.names.add(nameOf(member));
    if (2 * before <= a.of && 2 * a.names.size > a.of) {
      const last = this.acks.at(-1);
      if (last !== undefined && compareVersion(version, last.version) > 0 && !this.contains(to, count, last))
        this.report(
          'committed-lost',
          `acknowledged ${v} (${to}) does not contain the earlier acknowledged ${versionText(last.version)} (${last.state})`,
        );
      if (last === undefined || compareVersion(version, last.version) > 0) {
        this.acks.push({ t, version, state: to, count });
        this.acknowledged++;
      }
    }
  }

  /** `member` holds state `state` at `version` (after an apply, a transfer or a restart). */
  holds(member: MemberKey, version: StateVersion, state: string): void {
    if (version[2] !== 0) return; // branches of one prefix differ
    const v = versionText(version);
    const seen = this.byVersion.get(v);
    if (seen === undefined) this.byVersion.set(v, { state, by: member });
    else if (seen.state !== state)
      this.report('state-version', `${member} holds ${state} at version ${v}, ${seen.by} held ${seen.state}`);
  }

  /** A transfer handed `member` a state of `version`; it held `own` when it froze. */
  transferred(t: number, member: MemberKey, own: StateVersion, version: StateVersion): void {
    if (compareVersion(version, own) < 0)
      this.report(
        'state-rollback',
        `${member} at ${t}: received a state of version ${versionText(version)}, older than its own ${versionText(own)}`,
      );
  }

  /**
   * A primary view of `step` was installed with state (`state`, `count`): it must hold every
   * change acknowledged earlier in the primary sequence (in a primary view of a lower step).
   * Judged by step, not by time: a stale coordinator may install a primary view late, after the
   * others moved on to newer ones (they remembered it as an attempt), and it is still before them.
   */
  primaryInstalled(
    t: number,
    member: MemberKey,
    viewId: string,
    step: number,
    state: string,
    count: number,
  ): void {
    let last: Ack | undefined;
    for (let i = this.acks.length - 1; i >= 0; i--)
      if (this.acks[i]!.version[0]! < step) {
        last = this.acks[i]!;
        break;
      }
    if (last !== undefined && !this.contains(state, count, last))
      this.report(
        'committed-lost',
        `primary view ${viewId} (step ${step}) installed at ${member} (t=${t}) with state ${state}, without the change acknowledged at t=${last.t} (version ${versionText(last.version)}, state ${last.state})`,
      );
  }

  private contains(state: string, count: number, a: Ack): boolean {
    if (count < a.count) return false;
    let s: string | undefined = state;
    for (let i = count; i > a.count && s !== undefined; i--) s = this.parent.get(s);
    return s === a.state;
  }
}
