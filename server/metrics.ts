/**
 * Prometheus metrics of one core server (prom-client, prefix `keyglass_`), in a registry of its
 * own so several servers can live in one process (tests) without clashing. Only what the
 * server really measures is here. prom-client's process and Node.js metrics keep their standard
 * names (`process_*`, `nodejs_*`) so that stock dashboards and alerts match them.
 */
import { packageVersion } from './version.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayCounters } from '../leaf-plane/index.js';

export type { RelayCounters };

/**
 * Duration buckets (seconds) of every latency histogram: from 0.5 ms up to 30 s, so the slow end
 * the docs measure (a batch reaching 10⁴ TLS leaves in 2.6 s, a full refresh holding the main
 * thread ~0.8 s per batch at 10⁶ leaves) lands in a bucket and not in +Inf.
 */
const SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;

/** Default metrics removed: gauges with a counter's suffix, sums of gauges that stay. */
const NON_COUNTER_TOTALS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/** What the expiry gauges read of a certificate (auth CertInfo). */
export interface ExpiringCertificate {
  readonly serial: string;
  readonly notAfter: Date;
}

/** What the CRL gauge reads of an installed CRL (auth VerifiedCrl). */
export interface InstalledCrl {
  readonly issuer: { readonly serial: string };
  readonly nextUpdate: Date | undefined;
}

/** The server's threads whose CPU time is reported. */
export type ServerThread = 'main' | 'leaf-tls';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly viewSize = new Gauge({
    name: 'keyglass_view_size',
    help: 'Members of the installed core view',
    registers: [this.registry],
  });
  readonly viewChanges = new Counter({
    name: 'keyglass_view_changes_total',
    help: 'Core views installed',
    registers: [this.registry],
  });
  readonly viewChangeSeconds = new Histogram({
    name: 'keyglass_view_change_duration_seconds',
    help: 'From the start of a flush (block) to the installation of the next view',
    buckets: [...SECONDS_BUCKETS],
    registers: [this.registry],
  });
  readonly primary = new Gauge({
    name: 'keyglass_view_primary',
    help: '1 when the installed view is primary',
    registers: [this.registry],
  });
  readonly coreEpoch = new Gauge({
    name: 'keyglass_core_epoch',
    help: 'Generation of the committed core key (0 until the first one)',
    registers: [this.registry],
  });
  readonly coreRekeys = new Counter({
    name: 'keyglass_core_rekeys_total',
    help: 'Core keys committed, by cause (view change or periodic refresh)',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly coreRekeySeconds = new Histogram({
    name: 'keyglass_core_rekey_duration_seconds',
    help: "From a view's installation to the commit of its first core key",
    buckets: [...SECONDS_BUCKETS],
    registers: [this.registry],
  });
  readonly leafMembers = new Gauge({
    name: 'keyglass_leaf_members',
    help: 'Leaves in the leaf key tree',
    registers: [this.registry],
  });
  readonly leavesExposed = new Gauge({
    name: 'keyglass_leaves_exposed',
    help: 'Admitted leaves whose own key a revoked core server may know (not refreshed since its revocation)',
    registers: [this.registry],
  });
  readonly leafKeyRefreshes = new Counter({
    name: 'keyglass_leaf_key_refreshes_total',
    help: 'Own-key refreshes this server ordered for its linked leaves, by cause',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly leafEpoch = new Gauge({
    name: 'keyglass_leaf_epoch',
    help: 'Epoch of the leaf key tree',
    registers: [this.registry],
  });
  readonly leafSessions = new Gauge({
    name: 'keyglass_leaf_sessions',
    help: 'Leaves linked to this server',
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'keyglass_batch_size',
    help: 'Joins plus departures applied in one leaf batch',
    // A full refresh or 1 % churn at 10⁶ leaves cuts batches of 10⁴ and more.
    buckets: [1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384, 65536],
    registers: [this.registry],
  });
  readonly batchRekeySeconds = new Histogram({
    name: 'keyglass_batch_rekey_duration_seconds',
    help: "Applying a cut: keytree batch, signing and pushing to this server's leaves",
    buckets: [...SECONDS_BUCKETS],
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: 'keyglass_leaf_commit_duration_seconds',
    help: 'Making the ordered commands of one stack event durable (one write, one fsync) and applying them',
    buckets: [...SECONDS_BUCKETS],
    registers: [this.registry],
  });
  readonly commitCommands = new Histogram({
    name: 'keyglass_leaf_commit_commands',
    help: 'Ordered leaf-state commands made durable by one fsync (group commit)',
    buckets: [1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384],
    registers: [this.registry],
  });
  readonly rekeyBytes = new Counter({
    name: 'keyglass_rekey_message_bytes_total',
    help: 'Bytes of encoded leaf rekey messages produced',
    registers: [this.registry],
  });
  readonly joins = new Counter({
    name: 'keyglass_joins_total',
    help: 'Leaves admitted (welcomed) by this server',
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: 'keyglass_refusals_total',
    help: 'Refused connections and joins by reason',
    labelNames: ['port', 'reason'] as const,
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: 'keyglass_revocations_total',
    help: 'Certificates newly revoked by a CRL reload',
    registers: [this.registry],
  });
  readonly evictions = new Counter({
    name: 'keyglass_evictions_total',
    help: 'Leaves removed from the tree by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly publishes = new Counter({
    name: 'keyglass_publishes_total',
    help: "Publishes from this server's leaves by result (accepted into the core relay, or why not)",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly dataRelayed = new Counter({
    name: 'keyglass_data_relayed_total',
    help: "Sealed data envelopes delivered to this server's leaves",
    registers: [this.registry],
  });
  readonly decodeFailures = new Counter({
    name: 'keyglass_decode_failures_total',
    help: 'Frames that did not decode, by channel',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });

  /** Read at scrape time from the edge relay (`observeRelay`); absent relay → zeros. */
  private relay: () => RelayCounters | undefined = () => undefined;
  readonly gossipLeaves: Gauge = new Gauge({
    name: 'keyglass_gossip_leaves',
    help: "This server's leaves served by gossip (they announced a UDP endpoint)",
    registers: [this.registry],
    collect: (): void => this.gossipLeaves.set(this.relay()?.leaves ?? 0),
  });
  readonly gossipItems: Counter<'kind' | 'path'> = new Counter({
    name: 'keyglass_gossip_items_total',
    help: "Rekey parts and data envelopes for this server's gossip leaves, by path: into the overlay by the edge relay (gossip), pushed over TLS because they could not go by datagram (tls), or sent again from the relay's history to leaves that pulled what gossip did not bring them (pull: stream entries, each one or more envelopes)",
    labelNames: ['kind', 'path'] as const,
    registers: [this.registry],
    collect: (): void => {
      const r = this.relay();
      this.gossipItems.reset();
      if (r === undefined) return;
      this.gossipItems.inc({ kind: 'part', path: 'gossip' }, r.partsRouted);
      this.gossipItems.inc({ kind: 'part', path: 'tls' }, r.partsFallback);
      this.gossipItems.inc({ kind: 'data', path: 'gossip' }, r.dataInjected);
      this.gossipItems.inc({ kind: 'data', path: 'tls' }, r.dataFallback);
      this.gossipItems.inc({ kind: 'data', path: 'pull' }, r.dataPulled);
    },
  });
  readonly gossipDatagrams: Counter = new Counter({
    name: 'keyglass_gossip_datagrams_total',
    help: 'Datagrams sent by the edge relay',
    registers: [this.registry],
    collect: (): void => {
      this.gossipDatagrams.reset();
      this.gossipDatagrams.inc(this.relay()?.datagrams ?? 0);
    },
  });

  /** Read at scrape time (`observeThreads`): CPU seconds per thread, where the OS can say. */
  private threads: () => Partial<Record<ServerThread, number>> = () => ({});
  readonly threadCpu: Counter<'thread'> = new Counter({
    name: 'keyglass_thread_cpu_seconds_total',
    help: "CPU time of the server's main thread (core group, leaf protocol, store) and of its leaf-port TLS thread (handshakes, record encryption), user + system (Linux /proc)",
    labelNames: ['thread'] as const,
    registers: [this.registry],
    collect: (): void => {
      this.threadCpu.reset();
      for (const [thread, seconds] of Object.entries(this.threads()))
        if (seconds !== undefined) this.threadCpu.inc({ thread }, seconds);
    },
  });

  readonly buildInfo = new Gauge({
    name: 'keyglass_build_info',
    help: 'Always 1: the Keyglass version and the Node.js version this server runs',
    labelNames: ['version', 'node'] as const,
    registers: [this.registry],
  });
  /** Labelled by the CRL's issuer: no series until a CRL is loaded (0 would read as "stale since 1970"). */
  readonly crlNextUpdate = new Gauge({
    name: 'keyglass_crl_next_update_timestamp_seconds',
    help: "nextUpdate of each installed CRL (Unix seconds), by its issuer's certificate serial: past it the CRL is stale and leaf admissions are refused",
    labelNames: ['issuer'] as const,
    registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: 'keyglass_certificate_expiry_timestamp_seconds',
    help: "notAfter (Unix seconds) of this server's certificate (cert=server) and of its trust anchors (cert=anchor), by serial",
    labelNames: ['cert', 'serial'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // prom-client's three gauges named *_total break the exposition rules (`promtool check
    // metrics`: "non-counter metrics should not have _total suffix"); each is the sum of the
    // labelled gauge of the same name without the suffix (nodejs_active_handles{type}…), kept.
    for (const name of NON_COUNTER_TOTALS) this.registry.removeSingleMetric(name);
    this.buildInfo.set({ version: packageVersion() ?? 'unknown', node: process.version }, 1);
  }

  /** Called wherever the CRLs are (re)loaded: the gauge shows exactly the installed set. */
  crlsInstalled(crls: readonly InstalledCrl[]): void {
    this.crlNextUpdate.reset();
    for (const c of crls)
      if (c.nextUpdate !== undefined)
        this.crlNextUpdate.set({ issuer: c.issuer.serial }, c.nextUpdate.getTime() / 1000);
  }

  /** Called wherever this server's certificate or its trust anchors are (re)loaded. */
  certificatesLoaded(server: ExpiringCertificate, anchors: readonly ExpiringCertificate[]): void {
    this.certificateExpiry.reset();
    this.certificateExpiry.set({ cert: 'server', serial: server.serial }, server.notAfter.getTime() / 1000);
    for (const a of anchors)
      this.certificateExpiry.set({ cert: 'anchor', serial: a.serial }, a.notAfter.getTime() / 1000);
  }

  /** The relay's monotonic counters, read at each scrape (the relay owns them; no double counting). */
  observeRelay(source: () => RelayCounters | undefined): void {
    this.relay = source;
  }

  observeThreads(source: () => Partial<Record<ServerThread, number>>): void {
    this.threads = source;
  }
}
