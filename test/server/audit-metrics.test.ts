/**
 * Real `keyglass server` processes (issue 20 items 3, 4): a live /metrics scrape passes
 * `promtool check metrics` and carries the standard process/Node.js names, the build info, the
 * CRL and certificate gauges; every server's log holds one audit line per admission, departure
 * and revocation, for leaves linked to it and to the others alike.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { PROMTOOL_ABSENT, promtool, promtoolVersion } from '../docs/promtool.js';
import { Cluster, until, type Leaf, type ServerProc } from './cluster.js';

const cluster = new Cluster();
const srv = (i: number): ServerProc => cluster.servers[i]!;

test.before(async () => {
  await cluster.init();
  await cluster.startServers(3, { leaseMs: 20_000 });
  await cluster.untilOnePrimaryView(20_000);
});

test.after.always(async () => {
  await cluster.stop();
});

interface AuditLine {
  readonly msg: string;
  readonly event: string;
  readonly leaf: string;
  readonly serial: string;
  readonly reason: string;
  readonly epoch: number;
  readonly server: string;
}

/** The audit lines in a server's log file (the whole file, not the in-memory tail). */
function auditLines(s: ServerProc): AuditLine[] {
  const out: AuditLine[] = [];
  for (const line of readFileSync(s.logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as Partial<AuditLine>;
    if (j.msg === 'audit') out.push(j as AuditLine);
  }
  return out;
}

const keyed = (leaf: Leaf): Promise<void> =>
  until(`${leaf.name} has a key`, () => leaf.keys.length > 0, 10_000);

test.serial('every server logs one audit line per admission, departure and revocation', async (t) => {
  // Linked to different servers: each server must log the changes of leaves linked elsewhere too.
  const stays = await cluster.leaf('audit-stays', 0);
  const leaves = await cluster.leaf('audit-leaves', 1);
  const revoked = await cluster.leaf('audit-revoked', 2);
  await Promise.all([keyed(stays), keyed(leaves), keyed(revoked)]);
  await leaves.client.close({ leave: true });
  await cluster.revoke(revoked.serial);
  await until('the revoked leaf is evicted', () => revoked.evicted.length > 0, 15_000);

  const expect = (s: ServerProc, event: string, leaf: Leaf, reason: string): ((l: AuditLine) => boolean) => {
    return (l) => l.event === event && l.leaf === leaf.name && l.reason === reason && l.server === s.name;
  };
  for (const s of cluster.servers) {
    await until(
      `${s.name} logged the departure and the revocation`,
      () => {
        const lines = auditLines(s);
        return (
          lines.some(expect(s, 'departure', leaves, 'left')) &&
          lines.some(expect(s, 'revocation', revoked, 'revoked'))
        );
      },
      10_000,
    );
    const lines = auditLines(s);
    for (const leaf of [stays, leaves, revoked]) {
      const admissions = lines.filter(expect(s, 'admission', leaf, 'join'));
      t.is(admissions.length, 1, `${s.name}: one admission line for ${leaf.name}`);
      t.is(admissions[0]?.serial, leaf.serial, `${s.name}: ${leaf.name}'s certificate serial`);
    }
    const left = lines.filter(expect(s, 'departure', leaves, 'left'));
    const gone = lines.filter(expect(s, 'revocation', revoked, 'revoked'));
    t.is(left.length, 1, `${s.name}: one departure line`);
    t.is(gone.length, 1, `${s.name}: one revocation line`);
    t.is(left[0]!.serial, leaves.serial);
    t.is(gone[0]!.serial, revoked.serial);
    // The epoch a removal names is later than the one that admitted the leaf.
    const admittedAt = (leaf: Leaf): number => lines.find(expect(s, 'admission', leaf, 'join'))!.epoch;
    t.true(left[0]!.epoch > admittedAt(leaves));
    t.true(gone[0]!.epoch > admittedAt(revoked));
    t.false(
      lines.some((l) => l.leaf === stays.name && l.event !== 'admission'),
      `${s.name}: nothing removed the leaf that stayed`,
    );
  }
  // Every server names the same epochs for the same changes (they applied the same batches).
  const epochs = (s: ServerProc): string =>
    auditLines(s)
      .map((l) => `${l.event} ${l.leaf} ${l.epoch}`)
      .sort()
      .join('\n');
  t.is(epochs(srv(1)), epochs(srv(0)));
  t.is(epochs(srv(2)), epochs(srv(0)));
});

test.serial('a live /metrics scrape passes promtool check metrics, with standard names', async (t) => {
  const s = srv(0);
  const res = await cluster.get(s, '/metrics');
  t.is(res.status, 200);
  const text = await res.text();
  // Standard prom-client names (stock dashboards match them), no keyglass_process_ copies.
  t.regex(text, /^process_cpu_seconds_total \d/m);
  t.regex(text, /^process_resident_memory_bytes \d/m);
  t.regex(text, /^nodejs_eventloop_lag_p99_seconds \d/m);
  t.notRegex(text, /^keyglass_process_/m);
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  t.true(
    text.includes(`keyglass_build_info{version="${pkg.version}",node="${process.version}"} 1`),
    'build info names the package and Node.js versions',
  );
  // The cluster's CRL has a nextUpdate in the future; the server certificate expires later still.
  const gauge = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  const crl = gauge(/^keyglass_crl_next_update_timestamp_seconds\{issuer="[0-9a-f]+"\} (\S+)$/m);
  const cert = gauge(
    /^keyglass_certificate_expiry_timestamp_seconds\{cert="server",serial="[0-9a-f]+"\} (\S+)$/m,
  );
  const anchor = gauge(
    /^keyglass_certificate_expiry_timestamp_seconds\{cert="anchor",serial="[0-9a-f]+"\} (\S+)$/m,
  );
  const now = Date.now() / 1000;
  t.true(crl > now && crl < now + 400 * 86_400, `CRL nextUpdate ${crl}`);
  t.true(cert > now, `server certificate expiry ${cert}`);
  t.true(anchor >= cert, `anchor expiry ${anchor}`);
  // The batch rekey histogram reaches past the 2.6 s the docs measure.
  t.regex(text, /^keyglass_batch_rekey_duration_seconds_bucket\{le="30"\} \d+$/m);

  const version = promtoolVersion();
  if (version === undefined) {
    t.log(PROMTOOL_ABSENT);
    return;
  }
  const out = promtool(['check', 'metrics'], text);
  t.log(`${version}: promtool check metrics → exit ${out.code}${out.stdout}${out.stderr}`.trim());
  t.is(out.code, 0, out.stderr);
  t.is(`${out.stdout}${out.stderr}`.trim(), '', 'no lint findings');
});
