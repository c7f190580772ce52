/**
 * The core key's specification, as checks over a run's log (keys on). Written from DESIGN.md
 * §Core key, from the `key` upcalls only:
 *
 * - key-agreement: members of a view commit the same sequence of keys in it (the same key at
 *   the same index; a member may stop early when the view ends), with strictly increasing
 *   epochs per member.
 * - key-freshness: a key committed in one view is never committed in another (every view
 *   replaces the core key; a partition never ends up sharing a key with the other side).
 * - key-liveness: once faults stop, every alive member holds a key committed in its final view,
 *   all of them the same, before the liveness deadline; a member is never unblocked without it.
 */

import type { Property } from './checkers.js';
import type { MemberLog, RunLog } from './log.js';

type Report = (p: Property, detail: string) => void;

export function checkKeys(log: RunLog, report: Report): void {
  const members = [...log.members.values()];
  checkAgreementAndFreshness(members, report);
  checkKeyLiveness(log, report);
}

function checkAgreementAndFreshness(members: readonly MemberLog[], report: Report): void {
  const seqByView = new Map<string, { by: string; secrets: string[] }>();
  const viewOfSecret = new Map<string, string>();
  for (const m of members) {
    const perView = new Map<string, string[]>();
    let lastEpoch = -1;
    for (const k of m.keys) {
      const v = m.views[k.viewIdx];
      if (v === undefined) {
        report('key-agreement', `${m.key} committed key ${k.keyId} before any view`);
        continue;
      }
      if (k.epoch <= lastEpoch) report('key-agreement', `${m.key} epoch ${k.epoch} after ${lastEpoch}`);
      lastEpoch = k.epoch;
      const list = perView.get(v.id) ?? [];
      list.push(k.secret);
      perView.set(v.id, list);
      const other = viewOfSecret.get(k.secret);
      if (other === undefined) viewOfSecret.set(k.secret, v.id);
      else if (other !== v.id)
        report('key-freshness', `key ${k.keyId} committed in ${other} and again in ${v.id}`);
    }
    for (const [id, secrets] of perView) {
      const seen = seqByView.get(id);
      if (seen === undefined) {
        seqByView.set(id, { by: m.key, secrets });
        continue;
      }
      const n = Math.min(seen.secrets.length, secrets.length);
      for (let i = 0; i < n; i++) {
        if (seen.secrets[i] !== secrets[i]) {
          report('key-agreement', `${id}: key #${i} differs between ${seen.by} and ${m.key}`);
          break;
        }
      }
      if (secrets.length > seen.secrets.length) seqByView.set(id, { by: m.key, secrets });
    }
  }
}

function checkKeyLiveness(log: RunLog, report: Report): void {
  const deadline = log.quietAtMs + log.livenessBoundMs;
  let common: string | undefined;
  for (const key of log.aliveAtEnd) {
    const m = log.members.get(key);
    if (m === undefined) continue; // no view at all: the view checkers report it
    const finalIdx = m.views.length - 1;
    const k = m.keys.at(-1);
    if (k === undefined || k.viewIdx !== finalIdx) {
      report('key-liveness', `${key} holds no key of its final view ${m.views[finalIdx]?.id}`);
      continue;
    }
    const first = m.keys.find((x) => x.viewIdx === finalIdx)!;
    if (first.t > deadline) report('key-liveness', `${key} keyed its final view at ${first.t} > ${deadline}`);
    // The view's first key: a periodic refresh may be mid-commit when the run stops.
    if (common === undefined) common = first.secret;
    else if (common !== first.secret) report('key-liveness', `${key} keyed its final view with another key`);
  }
}
