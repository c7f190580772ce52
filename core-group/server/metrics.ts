/**
 * Prometheus metrics of one core server (prom-client, prefix `keyglass_`), in a registry of its
 * own so several servers can live in one process (tests) without clashing. Only what the
 * server really measures is here.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly primary = new Gauge({
    name: 'keyglass_view_primary',
    help: '1 when the installed view is primary',
    registers: [this.registry],
  });
  readonly coreEpoch = new Gauge({
    name: 'keyglass_core_epoch',
    help: 'Epoch of the installed core view',
    registers: [this.registry],
  });
  readonly leafMembers = new Gauge({
    name: 'keyglass_leaf_members',
    help: 'Leaves in the leaf key tree',
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
    buckets: [1, 2, 4, 8, 16, 64, 256, 1024, 4096],
    registers: [this.registry],
  });
  readonly batchRekeySeconds = new Histogram({
    name: 'keyglass_batch_rekey_duration_seconds',
    help: "Applying a cut: keytree batch, signing and pushing to this server's leaves",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: 'keyglass_leaf_commit_duration_seconds',
    help: 'Making the ordered commands of one stack event durable (one write, one fsync) and applying them',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly commitCommands = new Histogram({
    name: 'keyglass_leaf_commit_commands',
    help: 'Ordered leaf-state commands made durable by one fsync (group commit)',
    buckets: [1, 2, 4, 8, 16, 64, 256, 1024],
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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keyglass_process_' });
  }
}
