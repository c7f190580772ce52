/** Text output of the demo: the banner, one progress line per phase/second, and the summary. */
import { percentile } from './recorder.js';
import type { DemoOptions, DemoResult, Progress } from './scenario.js';

export function banner(o: DemoOptions): string {
  return [
    `keyglass demo — SIMULATION: ${o.servers} core servers and ${o.leaves} leaves in one process, seed ${o.seed}, ${o.durationS} s of virtual time`,
    '  real:      the shipped code: each server runs GroupMember (virtual synchrony, core key) and the leaf',
    '             plane (ServerPlane, LeafStateMachine, LeafStore and PrimaryRecord on in-memory storage), each',
    '             leaf a LeafSession; the crypto (Ed25519, AES-256-KW, HMAC/HKDF, XChaCha20-Poly1305) is real',
    '  simulated: the network and time (deterministic virtual time, 2–4 ms links), storage (in memory), TLS',
    '             (ordered links, a per-link exporter; certificates stand in by serial); times are virtual ms',
    '             except "CPU", which is real',
    '  not shown: gossip relay between leaves (servers hand rekey parts and data to their leaves over TLS)',
    '  the same world under random faults: `npm run sim -- system --seed S`',
    '',
  ].join('\n');
}

export function progressLine(p: Progress): string {
  const t = `${(p.t / 1000).toFixed(1).padStart(5)}s`;
  const last = p.lastBatchMs === undefined ? '—' : `${Math.round(p.lastBatchMs)} ms`;
  const head = `[${t}] ${p.phase.padEnd(6)}  view ${p.view.padEnd(22)}  epoch ${String(p.epoch).padStart(4)}  leaves ${String(p.leaves).padStart(5)}  last rekey ${last}`;
  return p.note === undefined ? head : `${head}\n          ▸ ${p.note}`;
}

function fmt(x: number, digits = 1): string {
  return Number.isNaN(x) ? '—' : x.toFixed(digits);
}

function kib(bytes: number): string {
  return bytes < 10_240 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

export function summary(r: DemoResult): string {
  const rec = r.recorder;
  const epochs = [...rec.epochs.values()];
  const complete = epochs.filter((e) => e.completedAt !== undefined).length;
  const lat = rec.rekeyLatencies();
  const rekeyBytes = epochs.map((e) => e.rekeyBytes);
  const pushBytes = epochs.map((e) => e.maxPushBytes).filter((b) => b > 0);
  const views = new Set(rec.views.map((v) => v.id)).size;
  const vc = r.viewChanges
    .map(
      (v) =>
        `${v.what} of ${v.server}: ${v.latencyMs === undefined ? 'not settled' : `${Math.round(v.latencyMs)} ms`}`,
    )
    .join('; ');
  const reasons = (m: Map<string, number>): string =>
    [...m].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';
  const undeliv = reasons(rec.undeliverable);
  const revoked = r.revoked;
  const rs = revoked === undefined ? undefined : rec.perSniffer.get(revoked.name);
  const msgs = [...rec.messages.values()];
  const full = msgs.filter((m) => m.delivered >= m.expected).length;
  const rows: [string, string][] = [
    ['batches (epochs cut)', `${epochs.length}  (${complete} reached every member)`],
    [
      'rekey latency, cut → all leaves hold key',
      `p50 ${fmt(percentile(lat, 50), 0)} ms  p99 ${fmt(percentile(lat, 99), 0)} ms  max ${fmt(percentile(lat, 100), 0)} ms (virtual)`,
    ],
    [
      'server CPU per batch (one replica)',
      `p50 ${fmt(percentile(rec.serverCpuMs, 50), 2)} ms  p99 ${fmt(percentile(rec.serverCpuMs, 99), 2)} ms (real)`,
    ],
    [
      'rekey message (full, inside the core)',
      `p50 ${kib(percentile(rekeyBytes, 50))}  max ${kib(percentile(rekeyBytes, 100))}`,
    ],
    [
      'max per-leaf rekey push',
      `p50 ${kib(percentile(pushBytes, 50))}  max ${kib(percentile(pushBytes, 100))}`,
    ],
    [
      'traffic core↔core / server↔leaf',
      `${rec.coreMessages} msgs ${kib(rec.coreBytes)} / ${rec.leafMessages} msgs ${kib(rec.leafBytes)}`,
    ],
    ['views installed (distinct)', `${views}; ${vc || 'no crash'}; state transfers ${rec.stateTransfers}`],
    ['leaf fail-overs / catch-ups / re-joins', `${rec.failovers} / ${rec.catchUps} / ${rec.rejoins}`],
    [
      'leaves told they are evicted',
      rec.evictions.size === 0 ? 'none' : [...rec.evictions].map(([r, n]) => `${r} ×${n}`).join(', '),
    ],
    [
      'messages published / delivered',
      `${rec.published} / ${rec.delivered} of ${rec.expectedDeliveries} expected (${fmt((100 * rec.delivered) / Math.max(1, rec.expectedDeliveries))}%); refused by members: ${undeliv}${rec.undeliverable.size > 0 ? ' (an epoch the leaf does not hold: a joiner gets nothing older than its welcome; a laggard catches up)' : ''}`,
    ],
    [
      'messages read by every current leaf',
      `${full} of ${msgs.length} (the rest were sent while a crashed server's leaves failed over: no gossip/data catch-up in this demo)`,
    ],
    [
      'departed leaves as eavesdroppers',
      `${rec.perSniffer.size} leaves: ${rec.sniff.attempts} envelopes tried, ${rec.sniff.opened} opened; ${rec.sniff.rekeyAttempts} rekeys tried, ${rec.sniff.rekeyFollowed} followed (${reasons(rec.sniff.reasons)})`,
    ],
    [
      'revoked leaf',
      revoked === undefined
        ? 'none'
        : `${revoked.name}, evicted at epoch ${revoked.evictedEpoch ?? '?'}: ${rs?.attempts ?? 0} later publishes tried, ${rs?.opened ?? 0} decrypted (${rs ? reasons(rs.reasons) : 'no attempts'})`,
    ],
    [
      'final state',
      `epoch ${r.finalEpoch}, ${r.finalMembers} leaves; replicas agree: ${r.replicasAgree ? 'yes' : 'no'}`,
    ],
    [
      'run',
      `${(r.virtualMs / 1000).toFixed(1)} s virtual in ${(r.wallMs / 1000).toFixed(1)} s wall${r.aborted ? ' (ABORTED)' : ''}`,
    ],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = ['', 'summary', ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`), ''];
  const v = r.verdict;
  if (r.laggards.length > 0) lines.push(`leaves without the current key: ${r.laggards.join('; ')}`);
  if (r.aborted) {
    lines.push('verdict: not reached (interrupted); the figures above are partial');
    return lines.join('\n');
  }
  lines.push(
    `verdict: all current leaves agree on the key: ${v.keysAgree ? 'yes' : 'NO'} (${r.leavesAgreeing}/${r.finalMembers}); ` +
      `evicted leaf could read after eviction: ${v.evictedCouldRead ? 'YES' : 'no'} → ${v.ok ? 'PASS' : 'FAIL'}`,
  );
  return lines.join('\n');
}
