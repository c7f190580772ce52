/**
 * One line saying why a leaf could not join: the client's summary plus what the servers said
 * (LeafConnectError.attempts: "host:port: reason" per attempt), each distinct reason once, the
 * most recent first — "auth: peer certificate not verified: …" or a server's refusal tells an
 * operator what to fix; "after 8 attempts" alone does not.
 */
import { LeafConnectError } from '../leaf-sdk/index.js';

/** At most this many distinct reasons are quoted, each cut to MAX_REASON_CHARS. */
const MAX_REASONS = 3;
const MAX_REASON_CHARS = 300;

export function joinFailure(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (!(e instanceof LeafConnectError) || e.attempts.length === 0) return message;
  const reasons: string[] = [];
  for (let i = e.attempts.length - 1; i >= 0 && reasons.length < MAX_REASONS; i--) {
    const r = e.attempts[i]!.replace(/\s+/g, ' ').slice(0, MAX_REASON_CHARS);
    if (!reasons.includes(r)) reasons.push(r);
  }
  return `${message}; last: ${reasons.join(' | ')}`;
}
