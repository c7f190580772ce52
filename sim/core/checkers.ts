/**
 * The specification of the core group, as checks over a run's log (log.ts). Written from the
 * properties in DESIGN.md §Core group, independently of the implementation.
 */

import { checkKeys } from './key-checkers.js';
import type { DeliverRec, MemberLog, RunLog, ViewRec } from './log.js';

export type Property =
  | 'view-agreement'
  | 'view-order'
  | 'self-inclusion'
  | 'virtual-synchrony'
  | 'total-order'
  | 'fifo'
  | 'no-duplication'
  | 'no-invention'
  | 'primary-uniqueness'
  | 'state-transfer'
  | 'committed-lost'
  | 'state-rollback'
  | 'state-version'
  | 'liveness'
  | 'unicast'
  | 'bounded-memory'
  | 'key-agreement'
  | 'key-freshness'
  | 'key-liveness'
  | 'key-secrecy'
  | 'traffic-keys'
  | 'exception';

export interface Violation {
  readonly property: Property;
  readonly detail: string;
}

export const PROPERTIES: readonly Property[] = [
  'view-agreement',
  'view-order',
  'self-inclusion',
  'virtual-synchrony',
  'total-order',
  'fifo',
  'no-duplication',
  'no-invention',
  'primary-uniqueness',
  'state-transfer',
  'committed-lost',
  'state-rollback',
  'state-version',
  'liveness',
  'unicast',
  'bounded-memory',
  'key-agreement',
  'key-freshness',
  'key-liveness',
  'key-secrecy',
  'traffic-keys',
  'exception',
];

/** Caps the violations kept per property so a broken run prints readably. */
const MAX_PER_PROPERTY = 5;

export function checkRun(log: RunLog): Violation[] {
  const out: Violation[] = [];
  const counts = new Map<Property, number>();
  const report = (property: Property, detail: string): void => {
    const c = counts.get(property) ?? 0;
    counts.set(property, c + 1);
    if (c < MAX_PER_PROPERTY) out.push({ property, detail });
  };
  const members = [...log.members.values()];
  checkViews(members, report);
  checkVirtualSynchrony(members, report);
  checkTotalOrder(members, report);
  checkFifoDupInvention(members, log, report);
  checkUnicast(members, log, report);
  checkLiveness(log, report);
  if (log.keysOn === true) checkKeys(log, report);
  return out;
}

type Report = (p: Property, detail: string) => void;

function checkViews(members: readonly MemberLog[], report: Report): void {
  const byId = new Map<string, { v: ViewRec; by: string }>();
  const primaryByStep = new Map<number, { id: string; by: string }>();
  for (const m of members) {
    let prev: ViewRec | undefined;
    for (const v of m.views) {
      if (!v.members.includes(m.key)) report('self-inclusion', `${m.key} installed ${v.id} without itself`);
      if (prev && !(v.epoch > prev.epoch || (v.epoch === prev.epoch && v.coord > prev.coord))) {
        report('view-order', `${m.key} installed ${v.id} after ${prev.id}`);
      }
      prev = v;
      const seen = byId.get(v.id);
      if (!seen) byId.set(v.id, { v, by: m.key });
      else {
        const same =
          seen.v.members.join(',') === v.members.join(',') &&
          seen.v.primary === v.primary &&
          seen.v.step === v.step;
        if (!same) {
          report(
            'view-agreement',
            `${v.id}: ${seen.by} has [${seen.v.members.join(',')}] primary=${seen.v.primary} step=${seen.v.step}, ` +
              `${m.key} has [${v.members.join(',')}] primary=${v.primary} step=${v.step}`,
          );
        }
        if (seen.v.state !== v.state) {
          report(
            'state-transfer',
            `${v.id}: state at install ${seen.by}=${seen.v.state} but ${m.key}=${v.state}`,
          );
        }
      }
      if (v.primary) {
        const p = primaryByStep.get(v.step);
        if (!p) primaryByStep.set(v.step, { id: v.id, by: m.key });
        else if (p.id !== v.id) {
          report(
            'primary-uniqueness',
            `step ${v.step}: ${p.id} (at ${p.by}) and ${v.id} (at ${m.key}) are both primary`,
          );
        }
      }
    }
  }
}

/** Delivered message ids per view index. */
function segments(m: MemberLog): Set<string>[] {
  const segs = m.views.map(() => new Set<string>());
  for (const d of m.delivered) segs[d.viewIdx]?.add(d.msgId);
  return segs;
}

function checkVirtualSynchrony(members: readonly MemberLog[], report: Report): void {
  // For each pair of consecutive views (v, v'), every member installing both delivers one set in v.
  const first = new Map<string, { set: Set<string>; by: string }>();
  for (const m of members) {
    const segs = segments(m);
    for (let i = 0; i + 1 < m.views.length; i++) {
      const k = `${m.views[i]!.id} -> ${m.views[i + 1]!.id}`;
      const set = segs[i]!;
      const f = first.get(k);
      if (!f) {
        first.set(k, { set, by: m.key });
        continue;
      }
      if (f.set.size !== set.size || [...set].some((x) => !f.set.has(x))) {
        const onlyA = [...f.set].filter((x) => !set.has(x)).slice(0, 3);
        const onlyB = [...set].filter((x) => !f.set.has(x)).slice(0, 3);
        report(
          'virtual-synchrony',
          `${k}: ${f.by} delivered ${f.set.size}, ${m.key} delivered ${set.size}; only at ${f.by}: ${onlyA.join(' ')}; only at ${m.key}: ${onlyB.join(' ')}`,
        );
      }
    }
  }
}

function checkTotalOrder(members: readonly MemberLog[], report: Report): void {
  const seqs = members.map((m) => ({
    key: m.key,
    order: m.delivered.filter((d) => d.channel === 'ordered').map((d) => d.msgId),
  }));
  const pos = seqs.map((s) => new Map(s.order.map((id, i) => [id, i])));
  for (let a = 0; a < seqs.length; a++) {
    for (let b = a + 1; b < seqs.length; b++) {
      const pb = pos[b]!;
      const pa = pos[a]!;
      const commonA = seqs[a]!.order.filter((id) => pb.has(id));
      const commonB = seqs[b]!.order.filter((id) => pa.has(id));
      for (let i = 0; i < commonA.length; i++) {
        if (commonA[i] !== commonB[i]) {
          report(
            'total-order',
            `${seqs[a]!.key} and ${seqs[b]!.key} disagree at common position ${i}: ${commonA[i]} vs ${commonB[i]}`,
          );
          break;
        }
      }
    }
  }
}

function checkFifoDupInvention(members: readonly MemberLog[], log: RunLog, report: Report): void {
  for (const m of members) {
    const seen = new Set<string>();
    const last = new Map<string, DeliverRec>();
    for (const d of m.delivered) {
      if (seen.has(d.msgId)) report('no-duplication', `${m.key} delivered ${d.msgId} twice`);
      seen.add(d.msgId);
      const origin = log.members.get(d.origin);
      const sent = origin?.sent.get(d.msgId);
      if (d.origin !== d.sender || !sent || sent.channel !== d.channel || sent.hash !== d.hash) {
        report(
          'no-invention',
          `${m.key} delivered ${d.msgId} from ${d.sender} that ${d.origin} never sent so`,
        );
      }
      const stream = `${d.sender}|${d.channel}`;
      const p = last.get(stream);
      if (p) {
        const ok = p.viewIdx === d.viewIdx ? d.counter === p.counter + 1 : d.counter > p.counter;
        if (!ok)
          report(
            'fifo',
            `${m.key}: ${stream} counter ${p.counter} (view ${p.viewIdx}) then ${d.counter} (view ${d.viewIdx})`,
          );
      }
      last.set(stream, d);
    }
  }
}

function checkUnicast(members: readonly MemberLog[], log: RunLog, report: Report): void {
  for (const m of members) {
    const last = new Map<string, number>();
    for (const u of m.unicastRecv) {
      const origin = log.members.get(u.from);
      if (origin?.unicastSent.get(u.msgId) !== u.hash)
        report('unicast', `${m.key} got ${u.msgId} never sent by ${u.from}`);
      const p = last.get(u.from) ?? 0;
      if (u.counter <= p) report('unicast', `${m.key}: from ${u.from} counter ${u.counter} after ${p}`);
      last.set(u.from, u.counter);
    }
  }
}

function checkLiveness(log: RunLog, report: Report): void {
  const deadline = log.quietAtMs + log.livenessBoundMs;
  const alive = new Set(log.aliveAtEnd);
  let common: string | undefined;
  for (const key of log.aliveAtEnd) {
    const m = log.members.get(key);
    const v = m?.views.at(-1);
    if (!v) {
      report('liveness', `${key} installed no view`);
      continue;
    }
    if (v.t > deadline) report('liveness', `${key} installed its final view ${v.id} at ${v.t} > ${deadline}`);
    if (common === undefined) common = v.id;
    else if (common !== v.id) report('liveness', `${key} ends in ${v.id}, others in ${common}`);
    if (v.members.length !== alive.size || v.members.some((x) => !alive.has(x))) {
      report(
        'liveness',
        `${key} ends in ${v.id} = [${v.members.join(',')}], alive = [${[...alive].join(',')}]`,
      );
    }
  }
}
