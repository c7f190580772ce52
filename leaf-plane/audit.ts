/**
 * The audit trail: one structured log line (msg "audit") per change of the leaf registry that a
 * batch applies — admission, departure, eviction, revocation — with the leaf's name, its
 * certificate serial, the reason, the epoch the batch starts and the server that wrote the line.
 * Every core server writes it for every batch it releases (server-plane.ts `distribute`, once a majority holds the batch), not only
 * for the leaves linked to it, so each server's log alone is a complete trail of the batches it
 * applied; the same change appears once per server.
 */
import type { BatchOutput } from './machine.js';
import type { DepartureReason } from './types.js';
import type { PlaneLog } from './observe.js';

export type AuditEvent = 'admission' | 'departure' | 'eviction' | 'revocation';

/** The message of every audit line: one name to filter on. */
export const AUDIT_MSG = 'audit';

/** A voluntary leave is a departure, a revoked certificate a revocation, anything else an eviction. */
export function auditEventOf(reason: DepartureReason): AuditEvent {
  return reason === 'left' ? 'departure' : reason === 'revoked' ? 'revocation' : 'eviction';
}

/** Writes the audit lines of one applied batch: removals first (the tree applies them first), then admissions. */
export function auditBatch(
  log: PlaneLog,
  server: string,
  batch: Pick<BatchOutput, 'epoch' | 'admitted' | 'evicted'>,
): void {
  for (const e of batch.evicted)
    log.info(AUDIT_MSG, {
      event: auditEventOf(e.reason),
      leaf: e.name,
      serial: e.serial,
      reason: e.reason,
      epoch: batch.epoch,
      server,
    });
  for (const a of batch.admitted)
    log.info(AUDIT_MSG, {
      event: 'admission',
      leaf: a.name,
      serial: a.serial,
      reason: 'join',
      epoch: batch.epoch,
      server,
    });
}
