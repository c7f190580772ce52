/**
 * gms — group membership: views, flush, primary component, merge, state transfer.
 *
 * Guarantees (up):
 * - Every member installs a sequence of views with increasing ids; each contains the member.
 *   Members that install a view agree on its members, primary flag and last primary.
 * - Virtual synchrony: a view change is a three-round, coordinator-driven flush.
 *     PROPOSE  (coordinator → each proposed member) the member freezes its current view (stops
 *              sending and delivering), upcalls `block`, and answers FLUSH_OK with its receipt
 *              vector and every old-view message it still holds (all those not yet stable).
 *     PREPARE  for each old view represented, the coordinator takes the cut = per-sender max of
 *              the survivors' vectors and sends each member the messages it lacks up to that
 *              cut, with the primary decision. Members store them and answer READY.
 *     COMMIT   members deliver exactly up to the cut (nakack), then the leftovers in agreed
 *              order (total), apply the coordinator's state if they come from another old view,
 *              install the view and unblock. They answer INSTALLED.
 *   Every round is retransmitted until answered; a member that does not answer is dropped and
 *   the flush restarts with a new, higher view id, which also makes every stale round ignorable.
 *   So members that install the same two consecutive views deliver the same set in the first.
 * - The coordinator is the oldest unsuspected member of the current view. If it fails during a
 *   flush the next oldest sees the suspicion and runs its own flush; a member frozen by a
 *   proposal that makes no progress for flushTimeoutMs also hands over to its own coordinator.
 * - Primary component (dynamic voting with remembered attempts): a new view is primary iff it
 *   holds a strict majority of the last primary view known to any of its members and of every
 *   primary attempt newer than that. Members record an attempt when they READY a primary
 *   PREPARE, before anyone can install it, so two disjoint histories cannot both continue the
 *   primary sequence: at most one primary view per step.
 * - Durable knowledge: majorities are counted by NAME, and what a name knows of the primary
 *   sequence (its last primary and its attempts) is kept by the host (MembershipMemory): an
 *   attempt is saved before READY, the knowledge of every installed view before the application
 *   sees it, and every incarnation (boot or rejoin) starts from it. So after any outage the
 *   servers become primary again by themselves once a majority of the last primary's names are
 *   back, and the intersection argument of dynamic voting holds across restarts: a majority of
 *   any primary P's names recorded P (or a newer primary) durably before P could be installed.
 * - Merge and join are one mechanism: a new process is a singleton view; coordinators send HELLO
 *   to names outside their view; the better-ranked coordinator (newest committed-state version,
 *   then newest last primary, then primary, then larger, then lower key) proposes the union. Its
 *   own state is the one kept: it is snapshotted at COMMIT, with its version, and installed at
 *   every member that came from another old view, atomically with the view that admits it. A
 *   merge where another old view reports a newer state (or, at equal versions, a newer primary)
 *   is abandoned, leaving that side to lead: state never flows from an older version to a newer.
 * - A member of my view that shows up in an older view (it was excluded while alive) is told
 *   EXCLUDED and must rejoin with a new incarnation (the host does that).
 * Assumes (below): fd's `suspect`, nakack's `flushReport`/`store`/`deliverCut`, and total's
 * leftover delivery at `viewEnd`; retransmission of its own rounds is its own business.
 */

import type {
  MemberKey,
  MembershipMemory,
  PrimaryKnowledge,
  PrimaryRef,
  StateVersion,
  View,
  ViewId,
} from './ids.js';
import {
  compareVersion,
  compareViewId,
  genesisPrimary,
  holdsMajority,
  incarnationOf,
  MAX_MEMBERS,
  nameOf,
  sameViewId,
  viewIdText,
} from './ids.js';
import type { DownEvent, LayerContext, UpEvent } from './layer.js';
import { BaseLayer } from './layer.js';
import type {
  CommitMsg,
  ExcludedMsg,
  FlushedMsg,
  FlushOkMsg,
  Frame,
  HeartbeatMsg,
  HelloMsg,
  PrepareMsg,
  ProposeMsg,
  SuspectMsg,
} from './messages.js';
import { MAX_ATTEMPTS } from './messages.js';

export interface GmsConfig {
  /** Genesis primary: the founders' first incarnations. */
  readonly founders: readonly MemberKey[];
  /** Transport names of every possible member (hello targets). */
  readonly peers: readonly string[];
  /** Retransmission period of flush rounds. */
  readonly rtxMs: number;
  /** A flush phase without progress for this long is restarted (or taken over). */
  readonly flushTimeoutMs: number;
  readonly helloMs: number;
  /** A member that has not installed a committed view this long after COMMIT is dropped. */
  readonly lagTimeoutMs: number;
  /** The application's state snapshot (taken at the end of the coordinator's old view). */
  getState(): Uint8Array;
  /** The version of the application's committed state (see StateVersion). */
  stateVersion(): StateVersion;
  /** Durable knowledge of the primary sequence; without it a restart forgets (tests only). */
  readonly memory?: MembershipMemory;
}

type Phase = 'collect' | 'prepare' | 'commit';

interface Run {
  readonly id: ViewId;
  readonly members: readonly MemberKey[];
  phase: Phase;
  phaseAt: number;
  lastRtx: number;
  readonly reports: Map<MemberKey, FlushOkMsg>;
  readonly ready: Set<MemberKey>;
  readonly installed: Set<MemberKey>;
  readonly out: Map<MemberKey, Frame>;
}

interface FlushReport {
  readonly view: ViewId;
  readonly contig: readonly number[];
  readonly msgs: readonly FlushedMsg[];
}

interface Foreign {
  readonly hello: HelloMsg;
  readonly at: number;
}

/** Counters for metrics and the simulation summary. */
export interface GmsStats {
  viewsInstalled: number;
  flushesStarted: number;
  flushRestarts: number;
  merges: number;
}

export class Membership extends BaseLayer {
  readonly name = 'gms';
  private view!: View;
  private readonly suspects = new Set<MemberKey>();
  private accepted!: ViewId;
  private acceptedFrom: MemberKey = '';
  private acceptedAt = 0;
  private frozen = false;
  private prepare: PrepareMsg | undefined;
  private report: FlushReport | undefined;
  private attempts: PrimaryRef[] = [];
  /** The knowledge last made durable (MembershipMemory). */
  private saved: PrimaryKnowledge | undefined;
  private maxEpoch = 0;
  private run: Run | undefined;
  private readonly foreign = new Map<MemberKey, Foreign>();
  private lastHello = -Infinity;
  private lastSuspectReport = -Infinity;
  private lastMergeAt = -Infinity;
  /** Set by `leave`: this member only announces its departure until the host stops it. */
  private leaving = false;
  readonly stats: GmsStats = { viewsInstalled: 0, flushesStarted: 0, flushRestarts: 0, merges: 0 };

  constructor(
    ctx: LayerContext,
    private readonly cfg: GmsConfig,
  ) {
    super(ctx);
  }

  get currentView(): View {
    return this.view;
  }

  /**
   * Leave the group: every view member is told to suspect this member (so the next oldest takes
   * over if it is the coordinator), repeated every rtxMs. The host stops the member once the
   * others' view no longer holds it (or simply after a few failure-detector timeouts).
   */
  leave(): void {
    this.leaving = true;
    this.run = undefined;
    this.announceLeave();
  }

  get isLeaving(): boolean {
    return this.leaving;
  }

  private announceLeave(): void {
    this.lastSuspectReport = this.ctx.now();
    for (const to of this.view.members) {
      if (to !== this.ctx.self)
        this.send(to, {
          t: 'suspect',
          from: this.ctx.self,
          to,
          view: this.view.id,
          suspects: [this.ctx.self],
        });
    }
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  /** Installs the boot view: this incarnation alone. Primary only if it is a majority of the genesis (n = 1). */
  start(): void {
    const known = this.cfg.memory?.load();
    this.saved = known;
    this.attempts = known === undefined ? [] : [...known.attempts];
    const id: ViewId = { epoch: 0, coord: this.ctx.self };
    const decision = decidePrimary(
      id,
      [this.ctx.self],
      [
        {
          from: this.ctx.self,
          ...(known ?? { lastPrimary: genesisPrimary(this.cfg.founders), attempts: [] }),
        },
      ],
    );
    const view: View = {
      id,
      members: [this.ctx.self],
      primary: decision.primary,
      lastPrimary: decision.lastPrimary,
    };
    if (decision.primary) this.attempts = [];
    this.accepted = id;
    this.remember(view.lastPrimary);
    this.installView(view);
  }

  /**
   * Makes what this name knows of the primary sequence durable (when it changed): before READY
   * for an attempt, and before the application sees an installed view.
   */
  private remember(lastPrimary: PrimaryRef): void {
    const memory = this.cfg.memory;
    if (memory === undefined) return;
    const prev = this.saved;
    if (
      prev !== undefined &&
      sameViewId(prev.lastPrimary.id, lastPrimary.id) &&
      prev.lastPrimary.step === lastPrimary.step &&
      prev.attempts.length === this.attempts.length &&
      prev.attempts.every((a, i) => sameViewId(a.id, this.attempts[i]!.id))
    )
      return;
    const k: PrimaryKnowledge = { lastPrimary, attempts: [...this.attempts] };
    memory.save(k);
    this.saved = k;
  }

  // ---------------------------------------------------------------- events

  override up(ev: UpEvent): void {
    switch (ev.type) {
      case 'frame':
        return this.onFrame(ev.frame);
      case 'suspect':
        return this.onSuspect(ev.member);
      case 'flushReport':
        this.report = ev;
        return;
      default:
        return this.passUp(ev);
    }
  }

  override down(ev: DownEvent): void {
    this.passDown(ev);
  }

  override tick(now: number): void {
    if (this.leaving) {
      if (now - this.lastSuspectReport >= this.cfg.rtxMs) this.announceLeave();
      return;
    }
    if (this.run) this.runTick(now);
    this.evaluate(now);
    if (this.coordinator() === this.ctx.self && now - this.lastHello >= this.cfg.helloMs) {
      this.lastHello = now;
      this.sendHellos();
    }
    if (this.coordinator() !== this.ctx.self) {
      // Repeat suspicions until the coordinator acts; and if a flush we joined has stalled (its
      // proposer may be a foreign coordinator that died, which our detector does not watch),
      // ask our own coordinator to run one: a report that brings nothing new means exactly that.
      const stalled = this.frozen && now - this.acceptedAt > 2 * this.cfg.flushTimeoutMs;
      const due = now - this.lastSuspectReport >= (stalled ? this.cfg.flushTimeoutMs : 2 * this.cfg.rtxMs);
      if (due && (this.suspects.size > 0 || stalled)) this.reportSuspects();
    }
  }

  private onFrame(f: Frame): void {
    if ('to' in f && f.to !== this.ctx.self) return; // addressed to another incarnation of this name
    if (this.leaving) return;
    switch (f.t) {
      case 'propose':
        return this.onPropose(f);
      case 'flushok':
        return this.onFlushOk(f);
      case 'prepare':
        return this.onPrepare(f);
      case 'ready':
        if (
          this.run?.phase === 'prepare' &&
          sameViewId(f.id, this.run.id) &&
          this.run.members.includes(f.from)
        ) {
          this.run.ready.add(f.from);
          this.maybeCommit();
        }
        return;
      case 'commit':
        return this.onCommit(f);
      case 'installed':
        if (this.run?.phase === 'commit' && sameViewId(f.id, this.run.id)) {
          this.run.installed.add(f.from);
          this.maybeEndRun();
        }
        return;
      case 'hello':
        return this.onHello(f);
      case 'suspect':
        return this.onSuspectReport(f);
      case 'hb':
        return this.onHeartbeat(f);
      case 'excluded':
        return this.onExcluded(f);
      default:
        return this.passUp({ type: 'frame', frame: f });
    }
  }

  // ---------------------------------------------------------------- suspicion and coordinator

  private coordinator(): MemberKey {
    for (const m of this.view.members) if (!this.suspects.has(m)) return m;
    return this.ctx.self;
  }

  private onSuspect(m: MemberKey): void {
    if (m === this.ctx.self || !this.view.members.includes(m) || this.suspects.has(m)) return;
    this.suspects.add(m);
    if (this.coordinator() !== this.ctx.self) this.reportSuspects();
    this.evaluate(this.ctx.now());
  }

  private reportSuspects(): void {
    this.lastSuspectReport = this.ctx.now();
    const to = this.coordinator();
    const msg: SuspectMsg = {
      t: 'suspect',
      from: this.ctx.self,
      to,
      view: this.view.id,
      suspects: [...this.suspects],
    };
    this.send(to, msg);
  }

  private onSuspectReport(f: SuspectMsg): void {
    if (!sameViewId(f.view, this.view.id) || !this.view.members.includes(f.from) || this.suspects.has(f.from))
      return;
    let changed = false;
    // A member may suspect itself: that is how it leaves.
    for (const m of f.suspects) {
      if (m !== this.ctx.self && this.view.members.includes(m) && !this.suspects.has(m)) {
        this.suspects.add(m);
        changed = true;
      }
    }
    if (changed) return this.evaluate(this.ctx.now());
    // Nothing new: the reporter is stuck in a flush (see tick); run one if none is under way.
    if (this.coordinator() === this.ctx.self && !this.frozen && (!this.run || this.run.phase === 'commit')) {
      this.startRun(
        this.view.members.filter((m) => !this.suspects.has(m)),
        'takeover',
      );
    }
  }

  private onHeartbeat(f: HeartbeatMsg): void {
    // The sender still thinks we share an older view, but our newer primary view left it out.
    // (A non-primary view says nothing: the sender may be the majority and we the ones cut off.)
    if (this.view.primary && !this.view.members.includes(f.from) && compareViewId(f.view, this.view.id) < 0) {
      const msg: ExcludedMsg = { t: 'excluded', from: this.ctx.self, to: f.from, view: this.view.id };
      this.send(f.from, msg);
    }
  }

  private onExcluded(f: ExcludedMsg): void {
    if (this.view.members.includes(f.from) && compareViewId(f.view, this.view.id) > 0) {
      this.passUp({ type: 'excluded', by: f.from });
    }
  }

  // ---------------------------------------------------------------- deciding to change the view

  private evaluate(now: number): void {
    if (this.coordinator() !== this.ctx.self) return;
    if (this.run && this.run.phase !== 'commit') return;
    const survivors = this.view.members.filter((m) => !this.suspects.has(m));
    if (this.frozen) {
      // Frozen by someone else's proposal: take over if it stalls or its proposer is suspected.
      if (now - this.acceptedAt > this.cfg.flushTimeoutMs || this.suspects.has(this.acceptedFrom)) {
        this.startRun(survivors, 'takeover');
      }
      return;
    }
    if (survivors.length < this.view.members.length) return this.startRun(survivors, 'suspicion');
    if (now - this.lastMergeAt < 2 * this.cfg.helloMs) return;
    const mine = this.rank();
    const joiners: MemberKey[] = [];
    for (const [coord, fo] of this.foreign) {
      if (now - fo.at > 3 * this.cfg.helloMs || this.view.members.includes(coord)) {
        this.foreign.delete(coord);
        continue;
      }
      if (compareRank(mine, rankOf(fo.hello)) > 0) joiners.push(...fo.hello.members);
    }
    if (joiners.length === 0) return;
    this.lastMergeAt = now;
    this.stats.merges++;
    this.startRun([...survivors, ...joiners], 'merge');
  }

  private rank(): Rank {
    return {
      version: this.cfg.stateVersion(),
      lpStep: this.view.lastPrimary.step,
      primary: this.view.primary,
      size: this.view.members.length,
      coord: this.ctx.self,
    };
  }

  private onHello(f: HelloMsg): void {
    if (f.view.epoch > this.maxEpoch) this.maxEpoch = f.view.epoch;
    // A member of my view coordinating another view that leaves me out has left my view — if that
    // view is newer than mine. Every member of my view accepted its proposal (maxEpoch ≥ my
    // epoch), so any view it coordinates afterwards has a larger epoch; a hello from an older
    // view was sent before it joined mine (a joiner's own view, still in flight when the others
    // installed the merge — a slow joiner would otherwise be excluded right after its merge).
    if (
      this.view.members.includes(f.from) &&
      f.view.epoch > this.view.id.epoch &&
      !f.members.includes(this.ctx.self)
    ) {
      this.onSuspect(f.from);
      return;
    }
    if (this.view.members.includes(f.from) || !f.members.includes(f.from)) return;
    this.foreign.set(f.from, { hello: f, at: this.ctx.now() });
  }

  private sendHellos(): void {
    const inView = new Set(this.view.members.map(nameOf));
    const hello: HelloMsg = {
      t: 'hello',
      from: this.ctx.self,
      view: this.view.id,
      members: this.view.members.filter((m) => !this.suspects.has(m)),
      primary: this.view.primary,
      lpStep: this.view.lastPrimary.step,
      version: this.cfg.stateVersion(),
    };
    for (const name of this.cfg.peers)
      if (!inView.has(name)) this.passDown({ type: 'sendName', toName: name, frame: hello });
  }

  // ---------------------------------------------------------------- coordinator: running a flush

  private startRun(
    proposed: readonly MemberKey[],
    why: 'suspicion' | 'takeover' | 'merge' | 'restart',
  ): void {
    const members = dedupeMembers(this.ctx.self, proposed);
    this.stats.flushesStarted++;
    if (why === 'restart') this.stats.flushRestarts++;
    const id: ViewId = { epoch: ++this.maxEpoch, coord: this.ctx.self };
    const now = this.ctx.now();
    const run: Run = {
      id,
      members,
      phase: 'collect',
      phaseAt: now,
      lastRtx: now,
      reports: new Map(),
      ready: new Set(),
      installed: new Set(),
      out: new Map(),
    };
    this.run = run;
    this.acceptProposal(id, this.ctx.self);
    run.reports.set(this.ctx.self, this.flushOk(this.ctx.self, id));
    for (const to of members) {
      if (to === this.ctx.self) continue;
      const msg: ProposeMsg = { t: 'propose', from: this.ctx.self, to, id, members };
      run.out.set(to, msg);
      this.send(to, msg);
    }
    this.maybePrepare();
  }

  private runTick(now: number): void {
    const run = this.run!;
    const waiting = run.members.filter((m) =>
      run.phase === 'collect'
        ? !run.reports.has(m)
        : run.phase === 'prepare'
          ? !run.ready.has(m)
          : !run.installed.has(m),
    );
    if (run.phase === 'commit') {
      const lagging = waiting.filter((m) => !this.suspects.has(m));
      if (lagging.length === 0) return void (this.run = undefined);
      if (now - run.phaseAt > this.cfg.lagTimeoutMs) {
        for (const m of lagging) this.suspects.add(m);
        this.run = undefined;
        return;
      }
    } else if (waiting.some((m) => this.suspects.has(m))) {
      return this.startRun(
        run.members.filter((m) => !this.suspects.has(m)),
        'restart',
      );
    } else if (now - run.phaseAt > this.cfg.flushTimeoutMs) {
      return this.startRun(
        run.members.filter((m) => !waiting.includes(m)),
        'restart',
      );
    }
    if (now - run.lastRtx >= this.cfg.rtxMs) {
      run.lastRtx = now;
      for (const m of waiting) {
        const msg = run.out.get(m);
        if (msg) this.send(m, msg);
      }
    }
  }

  private onFlushOk(f: FlushOkMsg): void {
    const run = this.run;
    if (!run || run.phase !== 'collect' || !sameViewId(f.id, run.id) || !run.members.includes(f.from)) return;
    if (f.contig.length !== f.oldMembers.length) return;
    run.reports.set(f.from, f);
    this.maybePrepare();
  }

  private maybePrepare(): void {
    const run = this.run!;
    if (run.reports.size < run.members.length) return;
    const mine = run.reports.get(this.ctx.self)!;
    // The coordinator's state is the one every other old view adopts: it must be the newest. Its
    // own old view delivers one cut, so that view is as new as its newest report.
    const reports = [...run.reports.values()];
    let best = mine;
    for (const r of reports) if (sameViewId(r.oldView, mine.oldView) && compareReports(r, best) > 0) best = r;
    const better = reports.some((r) => !sameViewId(r.oldView, mine.oldView) && compareReports(r, best) > 0);
    if (better) {
      return this.startRun(
        run.members.filter((m) => sameViewId(run.reports.get(m)!.oldView, mine.oldView)),
        'restart',
      );
    }
    const decision = decidePrimary(run.id, run.members, [...run.reports.values()]);
    // One cut per old view: per sender, the furthest any survivor from that view got.
    const groups = new Map<string, FlushOkMsg[]>();
    for (const r of run.reports.values()) {
      const k = viewIdText(r.oldView);
      const g = groups.get(k);
      if (g) g.push(r);
      else groups.set(k, [r]);
    }
    for (const g of groups.values()) {
      const first = g[0]!;
      const cut = first.oldMembers.map((_, i) => Math.max(...g.map((r) => r.contig[i]!)));
      const pool = new Map<string, FlushedMsg>();
      for (const r of g) for (const m of r.msgs) pool.set(`${m.sender}:${m.seq}`, m);
      for (const r of g) {
        if (
          r.oldMembers.length !== first.oldMembers.length ||
          r.oldMembers.some((m, i) => m !== first.oldMembers[i])
        ) {
          throw new Error(`gms: members of ${viewIdText(r.oldView)} disagree`);
        }
        const msgs: FlushedMsg[] = [];
        first.oldMembers.forEach((sender, i) => {
          for (let seq = r.contig[i]! + 1; seq <= cut[i]!; seq++) {
            const m = pool.get(`${sender}:${seq}`);
            if (m === undefined) {
              const detail = g.map((x) => {
                const seqs = x.msgs.filter((y) => y.sender === sender).map((y) => y.seq);
                return `${x.from} contig ${x.contig[i]} holds [${seqs.length ? `${Math.min(...seqs)}..${Math.max(...seqs)}` : ''}]`;
              });
              throw new Error(
                `gms: flush of ${viewIdText(r.oldView)} lacks ${sender}:${seq}; ${detail.join('; ')}`,
              );
            }
            msgs.push(m);
          }
        });
        const prep: PrepareMsg = {
          t: 'prepare',
          from: this.ctx.self,
          to: r.from,
          id: run.id,
          members: run.members,
          primary: decision.primary,
          lastPrimary: decision.lastPrimary,
          attempts: decision.attempts,
          cut,
          msgs,
          resendUnordered: g.some((x) => x.from === first.oldMembers[0]),
        };
        run.out.set(r.from, prep);
      }
    }
    run.phase = 'prepare';
    run.phaseAt = run.lastRtx = this.ctx.now();
    for (const [to, msg] of run.out) {
      if (to === this.ctx.self) this.onPrepare(msg as PrepareMsg);
      else this.send(to, msg);
    }
    this.maybeCommit();
  }

  private maybeCommit(): void {
    const run = this.run!;
    if (run.ready.size < run.members.length) return;
    const mine = run.reports.get(this.ctx.self)!;
    run.phase = 'commit';
    run.phaseAt = run.lastRtx = this.ctx.now();
    const snap = this.install(this.prepare!, undefined, true)!;
    run.installed.add(this.ctx.self);
    run.out.clear();
    for (const to of run.members) {
      if (to === this.ctx.self) continue;
      const fromOtherView = !sameViewId(run.reports.get(to)!.oldView, mine.oldView);
      const msg: CommitMsg = {
        t: 'commit',
        from: this.ctx.self,
        to,
        id: run.id,
        state: fromOtherView ? snap.state : undefined,
        version: fromOtherView ? snap.version : [],
      };
      run.out.set(to, msg);
      this.send(to, msg);
    }
    this.maybeEndRun();
  }

  private maybeEndRun(): void {
    const run = this.run;
    if (run && run.phase === 'commit' && run.members.every((m) => run.installed.has(m))) this.run = undefined;
  }

  // ---------------------------------------------------------------- member side of the flush

  private acceptProposal(id: ViewId, from: MemberKey): void {
    if (id.epoch > this.maxEpoch) this.maxEpoch = id.epoch;
    this.accepted = id;
    this.acceptedFrom = from;
    this.acceptedAt = this.ctx.now();
    this.prepare = undefined;
    const wasFrozen = this.frozen;
    this.frozen = true;
    this.report = undefined;
    this.passDown({ type: 'freeze' });
    if (this.report === undefined) throw new Error('gms: freeze produced no flush report');
    if (!wasFrozen) this.passUp({ type: 'block' });
  }

  private flushOk(to: MemberKey, id: ViewId): FlushOkMsg {
    const r = this.report!;
    return {
      t: 'flushok',
      from: this.ctx.self,
      to,
      id,
      oldView: this.view.id,
      oldMembers: this.view.members,
      oldPrimary: this.view.primary,
      contig: r.contig,
      msgs: r.msgs,
      lastPrimary: this.view.lastPrimary,
      attempts: this.attempts,
      version: this.cfg.stateVersion(),
    };
  }

  private onPropose(f: ProposeMsg): void {
    if (!f.members.includes(this.ctx.self) || f.members.length > MAX_MEMBERS) return;
    const c = compareViewId(f.id, this.accepted);
    if (c < 0) return;
    if (c === 0) {
      if (f.from === this.acceptedFrom && this.report) this.send(f.from, this.flushOk(f.from, f.id));
      return;
    }
    if (compareViewId(f.id, this.view.id) <= 0) return;
    if (this.run && this.run.phase !== 'commit') this.run = undefined; // a higher proposal wins
    this.acceptProposal(f.id, f.from);
    this.send(f.from, this.flushOk(f.from, f.id));
  }

  private onPrepare(f: PrepareMsg): void {
    if (!sameViewId(f.id, this.accepted) || f.from !== this.acceptedFrom) return;
    if (f.cut.length !== this.view.members.length || !f.members.includes(this.ctx.self)) return;
    if (this.prepare === undefined) {
      this.prepare = f;
      this.passDown({ type: 'store', msgs: f.msgs });
      if (f.primary && !this.attempts.some((a) => sameViewId(a.id, f.lastPrimary.id))) {
        this.attempts = [...this.attempts, f.lastPrimary].slice(-MAX_ATTEMPTS);
        this.remember(this.view.lastPrimary); // durable before READY: see "Durable knowledge"
      }
    }
    if (f.from === this.ctx.self) this.run?.ready.add(this.ctx.self);
    else this.send(f.from, { t: 'ready', from: this.ctx.self, to: f.from, id: f.id });
  }

  private onCommit(f: CommitMsg): void {
    if (sameViewId(f.id, this.view.id)) {
      this.send(f.from, { t: 'installed', from: this.ctx.self, to: f.from, id: f.id });
      return;
    }
    if (!sameViewId(f.id, this.accepted) || f.from !== this.acceptedFrom || this.prepare === undefined)
      return;
    this.install(
      this.prepare,
      f.state === undefined ? undefined : { state: f.state, version: f.version },
      false,
    );
    this.send(f.from, { t: 'installed', from: this.ctx.self, to: f.from, id: f.id });
  }

  /** Delivers the old view's cut, adopts the state if given, installs the new view. Returns the coordinator's snapshot. */
  private install(p: PrepareMsg, state: Snapshot | undefined, snapshot: boolean): Snapshot | undefined {
    this.passDown({ type: 'deliverCut', cut: p.cut, resendUnordered: p.resendUnordered });
    const snap = snapshot ? { state: this.cfg.getState(), version: this.cfg.stateVersion() } : undefined;
    if (state !== undefined) this.passUp({ type: 'setState', state: state.state, version: state.version });
    const view: View = { id: p.id, members: p.members, primary: p.primary, lastPrimary: p.lastPrimary };
    const known = [...this.attempts, ...p.attempts];
    this.attempts = known
      .filter(
        (a, i) => a.step > view.lastPrimary.step && known.findIndex((b) => sameViewId(a.id, b.id)) === i,
      )
      .slice(-MAX_ATTEMPTS);
    this.remember(view.lastPrimary);
    this.installView(view);
    return snap;
  }

  private installView(view: View): void {
    this.view = view;
    this.accepted = view.id;
    this.acceptedFrom = '';
    this.frozen = false;
    this.prepare = undefined;
    this.report = undefined;
    this.suspects.clear();
    this.foreign.clear();
    this.stats.viewsInstalled++;
    this.passDown({ type: 'view', view });
    this.passUp({ type: 'view', view, self: this.ctx.self });
  }
}

// ---------------------------------------------------------------- pure decisions (unit-tested)

interface Snapshot {
  readonly state: Uint8Array;
  readonly version: StateVersion;
}

export interface Rank {
  readonly version: StateVersion;
  readonly lpStep: number;
  readonly primary: boolean;
  readonly size: number;
  readonly coord: MemberKey;
}

export function rankOf(h: HelloMsg): Rank {
  return { version: h.version, lpStep: h.lpStep, primary: h.primary, size: h.members.length, coord: h.from };
}

/** > 0 if `a` should lead a merge with `b`: the newest state first, never name order. */
export function compareRank(a: Rank, b: Rank): number {
  const v = compareVersion(a.version, b.version);
  if (v !== 0) return v;
  if (a.lpStep !== b.lpStep) return a.lpStep - b.lpStep;
  if (a.primary !== b.primary) return a.primary ? 1 : -1;
  if (a.size !== b.size) return a.size - b.size;
  return a.coord < b.coord ? 1 : a.coord > b.coord ? -1 : 0;
}

/** > 0 if flush report `a` comes from a newer state than `b` (version, then last primary, then primary). */
export function compareReports(
  a: { version: StateVersion; lastPrimary: PrimaryRef; oldPrimary: boolean },
  b: { version: StateVersion; lastPrimary: PrimaryRef; oldPrimary: boolean },
): number {
  const v = compareVersion(a.version, b.version);
  if (v !== 0) return v;
  if (a.lastPrimary.step !== b.lastPrimary.step) return a.lastPrimary.step - b.lastPrimary.step;
  return Number(a.oldPrimary) - Number(b.oldPrimary);
}

/** What a member reports of the primary sequence in its FLUSH_OK (or knows at boot). */
export interface PrimaryReport {
  readonly from: MemberKey;
  readonly lastPrimary: PrimaryRef;
  readonly attempts: readonly PrimaryRef[];
}

export interface PrimaryDecision {
  readonly primary: boolean;
  /** The new view's last primary (itself when primary). */
  readonly lastPrimary: PrimaryRef;
  /** Attempts newer than lastPrimary that the new view must keep remembering. */
  readonly attempts: readonly PrimaryRef[];
}

/**
 * Dynamic voting: the newest last primary among the members, and every attempt newer than it,
 * must each be held by a strict majority (of names) for the new view to be primary.
 *
 * A name counts toward the last primary's majority only if its own report knows that primary
 * (as its last primary or newer, or as an attempt). Every member of a primary view saved it
 * durably before READY, so a member that does not know it lost its memory (a wiped or replaced
 * data dir) and cannot be the witness the intersection argument needs; counting it could let
 * the view continue from an older state than the last primary's. (An attempt's members may
 * never have seen it, so attempts are held by names alone: if it was installed, they all did.)
 */
export function decidePrimary(
  id: ViewId,
  members: readonly MemberKey[],
  reports: readonly PrimaryReport[],
): PrimaryDecision {
  let lp = reports[0]!.lastPrimary;
  for (const r of reports) if (r.lastPrimary.step > lp.step) lp = r.lastPrimary;
  const attempts: PrimaryRef[] = [];
  for (const r of reports) {
    for (const a of r.attempts) {
      if (a.step > lp.step && !attempts.some((b) => sameViewId(a.id, b.id))) attempts.push(a);
    }
  }
  const set = new Set(members);
  const byMember = new Map(reports.map((r) => [r.from, r]));
  const witnesses = new Set(
    members.filter((m) => {
      if (lp.step === 0) return true; // the genesis: known to everyone
      const r = byMember.get(m);
      return (
        r !== undefined && (r.lastPrimary.step >= lp.step || r.attempts.some((a) => sameViewId(a.id, lp.id)))
      );
    }),
  );
  const primary =
    holdsMajority(witnesses, lp.members) && attempts.every((a) => holdsMajority(set, a.members));
  if (!primary) return { primary, lastPrimary: lp, attempts: attempts.slice(-MAX_ATTEMPTS) };
  const step = Math.max(lp.step, ...attempts.map((a) => a.step)) + 1;
  return { primary, lastPrimary: { step, id, members: [...members] }, attempts: [] };
}

/** Order-preserving de-duplication; of two incarnations of one name only the newest is kept. */
export function dedupeMembers(self: MemberKey, members: readonly MemberKey[]): MemberKey[] {
  const newest = new Map<string, MemberKey>();
  for (const m of [self, ...members]) {
    const prev = newest.get(nameOf(m));
    if (prev === undefined || incarnationOf(m) > incarnationOf(prev)) newest.set(nameOf(m), m);
  }
  const out: MemberKey[] = [];
  for (const m of [self, ...members]) if (newest.get(nameOf(m)) === m && !out.includes(m)) out.push(m);
  return out.slice(0, MAX_MEMBERS);
}
