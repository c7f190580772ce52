/**
 * What a key server's ports refuse, counted (`keyglass_refusals_total`) and logged: certificates
 * the identify checks refused, TLS handshakes that failed, and a second process under one core
 * server's name (net/tls.ts DUPLICATE_IDENTITY), which is an error line at most once per
 * identity per 10 s so a looping duplicate cannot flood the log.
 */
import { DUPLICATE_IDENTITY } from '../net/index.js';
import { REFUSAL_REASONS } from '../auth/index.js';
import { MAX_CORE_SERVERS } from './config.js';
import type { Logger } from './log.js';
import type { ServerMetrics } from './metrics.js';

/** One duplicate-identity error line per identity per this long. */
const DUPLICATE_LOG_INTERVAL_MS = 10_000;
/** Identities whose last duplicate-identity line is remembered: bounded, oldest first out. */
const MAX_DUPLICATE_PEERS = 4 * MAX_CORE_SERVERS;
/**
 * The identity a duplicate-identity refusal names (net/tls.ts puts it first). A refused inbound
 * link is otherwise known by its remote address, port included — a new one per attempt.
 */
const NAMED_IDENTITY = new RegExp(`${DUPLICATE_IDENTITY}: (\\S+)`);

export type Port = 'core' | 'leaf';

export class PortRefusals {
  /** When each identity's duplicate-identity refusal was last logged. */
  private readonly duplicateLogged = new Map<string, number>();

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {}

  /** A certificate an identify check refused (auth RefusalReason). */
  refused(port: Port, reason: string, detail: string): void {
    this.metrics.refusals.inc({ port, reason });
    this.log.warn('peer refused', { port, reason, detail });
  }

  /** A TLS transport's onHandshakeFailed. */
  handshakeFailed(port: Port, remote: string, reason: string, detail: string): void {
    if (detail.includes(DUPLICATE_IDENTITY)) return this.duplicateIdentity(remote, detail);
    // A certificate refusal was already counted under its own reason by the identify callback.
    if (REFUSAL_REASONS.some((r) => detail.startsWith(`${r}: `))) return;
    this.metrics.refusals.inc({ port, reason: reason === 'auth' ? 'handshake' : reason });
    this.log.warn('handshake failed', { port, remote, reason, detail: detail.slice(0, 200) });
  }

  /** A second process under one server name (net/tls.ts): an error line per identity per 10 s. */
  duplicateIdentity(peer: string, detail: string): void {
    this.metrics.refusals.inc({ port: 'core', reason: 'duplicate-identity' });
    const who = NAMED_IDENTITY.exec(detail)?.[1] ?? peer;
    const now = Date.now();
    if (now - (this.duplicateLogged.get(who) ?? -Infinity) < DUPLICATE_LOG_INTERVAL_MS) return;
    this.duplicateLogged.delete(who); // re-inserted: the newest line is the last to go
    this.duplicateLogged.set(who, now);
    if (this.duplicateLogged.size > MAX_DUPLICATE_PEERS)
      this.duplicateLogged.delete(this.duplicateLogged.keys().next().value!);
    this.log.error('core link refused: another process runs under this server name', { peer, detail });
  }
}
