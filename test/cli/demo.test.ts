/**
 * `keyglass demo`: the simulated scenario's verdicts and figures come from the run (and the
 * checker that produces the secrecy verdict can fail), the run replays from its seed, and the
 * command's flags are checked.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { LeafStateMachine, type BatchOutput, type LeafCommand } from '../../leaf-plane/index.js';
import { DataKeyring, DataSealer } from '../../gossip-edge/index.js';
import { LeafKeys } from '../../keytree/index.js';
import { CliError } from '../../cli/index.js';
import { parseDemoArgs } from '../../cli/demo.js';
import { Eavesdropper } from '../../cli/demo-sim/eavesdropper.js';
import { DemoRecorder } from '../../cli/demo-sim/recorder.js';
import { summary } from '../../cli/demo-sim/render.js';
import { runDemo, type DemoResult } from '../../cli/demo-sim/scenario.js';

const SMALL = { leaves: 30, servers: 3, seed: 7, durationS: 10 };

let first: Promise<DemoResult> | undefined;
const smallRun = (): Promise<DemoResult> => (first ??= runDemo(SMALL));

test('a small run passes its verdicts, and every figure behind them comes from the run', async (t) => {
  const r = await smallRun();
  const rec = r.recorder;
  t.false(r.aborted);
  t.true(r.verdict.ok, summary(r));
  t.true(r.verdict.keysAgree);
  t.false(r.verdict.evictedCouldRead);
  t.true(r.replicasAgree);
  // 90% join in waves, 10% late; about a tenth leave, one is revoked, a few more leave.
  t.true(r.finalMembers >= 20 && r.finalMembers < SMALL.leaves, `${r.finalMembers} members`);
  t.is(r.leavesAgreeing, r.finalMembers);
  t.true(rec.epochs.size >= 8, `${rec.epochs.size} epochs`);
  t.is(r.finalEpoch, Math.max(...rec.epochs.keys()));
  const lat = rec.rekeyLatencies();
  t.true(lat.length >= 5 && lat.every((x) => x > 0 && x < 5_000), `latencies ${lat.join(',')}`);
  t.true(rec.serverCpuMs.length >= rec.epochs.size); // every replica measures every batch it cuts
  // The revoked leaf really tried the publishes after its eviction, and none opened.
  t.truthy(r.revoked);
  const rs = rec.perSniffer.get(r.revoked!.name)!;
  t.truthy(r.revoked!.evictedEpoch);
  t.true(rs.attempts > 0, 'the revoked leaf tried to read later publishes');
  t.is(rs.opened, 0);
  t.true((rs.reasons.get('auth-failed') ?? 0) + (rs.reasons.get('unknown-epoch') ?? 0) >= rs.attempts);
  t.is(rec.sniff.opened, 0);
  t.is(rec.sniff.rekeyFollowed, 0);
  // The coordinator crashed: the survivors formed a view; it came back by state transfer.
  const crash = r.viewChanges.find((v) => v.what === 'crash');
  const rejoin = r.viewChanges.find((v) => v.what === 'rejoin');
  t.true(crash?.latencyMs !== undefined && crash.latencyMs > 0 && crash.latencyMs < 6_000);
  t.true(rejoin?.latencyMs !== undefined && rejoin.latencyMs > 0);
  t.true(rec.stateTransfers >= 1);
  t.true(rec.published > 10 && rec.delivered > 0 && rec.delivered <= rec.expectedDeliveries);
  t.regex(summary(r), /verdict: all current leaves agree on the key: yes .* → PASS/);
});

test('the same seed replays the same run', async (t) => {
  const a = await smallRun();
  const b = await runDemo(SMALL);
  const shape = (r: DemoResult) => ({
    epoch: r.finalEpoch,
    members: r.finalMembers,
    epochs: [...r.recorder.epochs.values()].map((e) => [e.epoch, e.members, e.rekeyBytes, e.completedAt]),
    delivered: r.recorder.delivered,
    views: r.recorder.views.map((v) => `${v.t}/${v.server}/${v.id}`),
  });
  t.deepEqual(shape(b), shape(a));
});

test('the eavesdropper reports a leak when a departed leaf holds a key it must not', async (t) => {
  const suite = await loadSuite();
  const m = new LeafStateMachine({ suite, group: new Uint8Array([1]), secret: new Uint8Array(32).fill(3) });
  m.setPrimary(true);
  const run = (cmd: LeafCommand): BatchOutput | undefined => m.apply(cmd).batch;
  const fp = new Uint8Array(32);
  run({ kind: 'admit', value: { name: 'a', serial: 'sa', fingerprint: fp, now: 0 } });
  run({ kind: 'admit', value: { name: 'b', serial: 'sb', fingerprint: fp, now: 0 } });
  const b1 = run({ kind: 'cutBatch', value: { epoch: 1, now: 1 } })!;
  const leaver = LeafKeys.fromWelcome(b1.admitted.find((x) => x.name === 'b')!.welcome);
  run({ kind: 'leave', value: { name: 'b' } });
  const b2 = run({ kind: 'cutBatch', value: { epoch: 2, now: 2 } })!;
  t.deepEqual(
    b2.evicted.map((d) => d.name),
    ['b'],
  );
  const newKey = m.groupKey()!;
  const ring = new DataKeyring(suite, { now: Date.now });
  ring.install(2, newKey);
  const envelope = new DataSealer(suite, ring, { sender: 1 }).seal(new Uint8Array([42]));

  // Honest: the leaver holds only what it had; it fails to follow the rekey and to read.
  const rec = new DemoRecorder();
  const eve = new Eavesdropper(suite, rec);
  eve.onBatch(b1);
  eve.adopt('b', leaver, [{ epoch: 1, key: leaver.groupKey() }]);
  eve.onBatch(b2);
  eve.onData(envelope);
  t.is(rec.sniff.attempts, 1);
  t.is(rec.sniff.opened, 0);
  t.is(rec.sniff.rekeyFollowed, 0);

  // Control: had the new group key leaked to it, the same check counts the envelope as read.
  const leakRec = new DemoRecorder();
  const leaky = new Eavesdropper(suite, leakRec);
  leaky.onBatch(b1);
  leaky.adopt('b', leaver, [{ epoch: 2, key: newKey }]);
  leaky.onBatch(b2);
  leaky.onData(envelope);
  t.is(leakRec.sniff.opened, 1);
});

test('flags: defaults, ranges, bad values', (t) => {
  const d = parseDemoArgs([]);
  t.deepEqual(d.options, { leaves: 200, servers: 3, seed: 1, durationS: 20 });
  t.false(d.quiet);
  const q = parseDemoArgs(['--leaves', '50', '--seed', '9', '--duration', '12', '--quiet']);
  t.deepEqual(q.options, { leaves: 50, servers: 3, seed: 9, durationS: 12 });
  t.true(q.quiet);
  t.throws(() => parseDemoArgs(['--leaves', '1']), { instanceOf: CliError, message: /--leaves/ });
  t.throws(() => parseDemoArgs(['--duration', 'x']), { instanceOf: CliError });
  t.throws(() => parseDemoArgs(['--servers', '2']), { instanceOf: CliError });
  t.throws(() => parseDemoArgs(['--bogus']), { instanceOf: CliError });
});
