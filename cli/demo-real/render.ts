/** Text of the real demo: banner, one progress line per phase, the closing summary table. */
import type { LocalCluster } from '../cluster/index.js';
import { percentile, type ActionKind } from './ledger.js';
import type { RealDemoOptions } from './options.js';
import type { DemoSnapshot, RealDemoResult } from './scenario.js';
import { renderDissemination } from './dissemination.js';

const ms = (x: number | undefined): string => (x === undefined ? '—' : `${Math.round(x)} ms`);

export function realBanner(opts: RealDemoOptions, cluster: LocalCluster): string {
  return [
    `keyglass demo: ${opts.servers} keyglass server processes on 127.0.0.1, ${opts.leaves} leaves, ~${opts.durationS} s of scripted activity`,
    `  (joins, leaves, a publish stream, a revocation, SIGKILL of the coordinator, a restart; real TLS, real time)`,
    `  temp dir ${cluster.dir}`,
    ...cluster.servers.map(
      (s) =>
        `  ${s.name}: core 127.0.0.1:${s.ports.core}  leaf 127.0.0.1:${s.ports.leaf}  metrics ${cluster.adminUrl(s, '/metrics')}`,
    ),
  ].join('\n');
}

export function realProgressLine(s: DemoSnapshot): string {
  const view = s.view
    ? `view ${s.view.size}${s.view.primary ? ' primary' : ' NOT primary'} (coord ${s.view.coordinator})`
    : 'view ?';
  return [
    `[${(s.elapsedMs / 1000).toFixed(1).padStart(5)} s]`,
    s.phase.padEnd(8),
    view.padEnd(32),
    `epoch ${s.rekeying ? '(rekeying)' : (s.leafEpoch ?? '—')}`.padEnd(17),
    `leaves ${s.connected}/${s.leaves} connected`.padEnd(25),
    s.note,
  ].join(' ');
}

const KINDS: readonly ActionKind[] = ['join-wave', 'join', 'leave', 'revoke', 'failover', 'restart'];

export function realSummary(r: RealDemoResult): string {
  const led = r.ledger;
  const rows: [string, string][] = [];
  const all = led.latencies();
  rows.push([
    'rekey latency (action → last leaf keyed)',
    `p50 ${ms(percentile(all, 50))}  p99 ${ms(percentile(all, 99))}  max ${ms(percentile(all, 100))}  (${all.length} actions${led.timeouts() > 0 ? `, ${led.timeouts()} timed out` : ''})`,
  ]);
  for (const k of KINDS) {
    const xs = led.latencies(k);
    if (xs.length > 0)
      rows.push([`  ${k}`, `p50 ${ms(percentile(xs, 50))}  p99 ${ms(percentile(xs, 99))}  (${xs.length})`]);
  }
  const perServer = Object.entries(r.viewChangesByServer)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');
  rows.push([
    'view changes',
    `installed per server (keyglass_view_changes_total): ${perServer || '—'}; ${led.viewIds.size} distinct views seen on /status`,
  ]);
  rows.push([
    'coordinator SIGKILL',
    r.killed !== undefined
      ? `${r.killed}: primary view of the rest after ${ms(r.failoverMs)}`
      : 'not reached',
  ]);
  rows.push([
    'restart',
    r.restartMs !== undefined ? `merged back (state transfer) after ${ms(r.restartMs)}` : 'not reached',
  ]);
  const d = led.deliveries();
  const lost = d.expected - d.delivered;
  rows.push([
    'messages',
    `${d.messages} published, ${d.delivered}/${d.expected} deliveries (${lost} lost${d.expected > 0 ? `, ${((100 * lost) / d.expected).toFixed(2)}%` : ''})`,
  ]);
  rows.push(['  dissemination', renderDissemination(r.dissemination)]);
  const failures = Object.entries(r.decryptFailures);
  rows.push([
    '  envelopes not opened',
    failures.length === 0 ? 'none' : failures.map(([reason, n]) => `${reason} ${n}`).join(', '),
  ]);
  if (r.revoked !== undefined) {
    const v = r.revoked;
    rows.push([
      'revoked leaf',
      `${v.name}: ${v.reason !== undefined ? `evicted (${v.reason}) ${ms(v.evictedMs)} after the CRL` : 'NOT evicted'}; read ${v.readAfter} of ${v.publishedAfter} messages published after; holds the current key: ${v.heldCurrentKey ? 'YES' : 'no'}`,
    ]);
  }
  rows.push([
    'leaves at the end',
    `${r.finalLeaves} (${r.leavesAgreeing} on epoch ${r.finalEpoch ?? '—'}), ${r.failedJoins} failed joins`,
  ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const yes = (b: boolean): string => (b ? 'yes' : 'NO');
  return [
    '',
    'summary',
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    ...(r.joinError !== undefined ? [`  first failed join: ${r.joinError}`] : []),
    ...(r.error !== undefined ? [`  error: ${r.error}`] : []),
    '',
    r.aborted
      ? 'verdict: interrupted'
      : `verdict: all current leaves agree on the key: ${yes(r.verdict.keysAgree)}, revoked leaf evicted and reads nothing: ${yes(r.verdict.revokedEvicted)}, every join admitted: ${yes(r.verdict.everyJoinAdmitted)} → ${r.verdict.ok ? 'PASS' : 'FAIL'}`,
  ].join('\n');
}
