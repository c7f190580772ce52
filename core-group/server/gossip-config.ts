/**
 * The optional `gossip` block of a server config (the edge relay's UDP side):
 *   "gossip": { "enabled": true, "host": "127.0.0.1", "port": 0, "fanout": 3, "maxDatagramBytes": 8192 }
 * Every field is optional: enabled by default, bound to the leaf listener's host when that is a
 * literal IP (else 127.0.0.1), ephemeral port (leaves learn the relay's address from its
 * datagrams; they never send to it), fan-out 3, datagrams ≤ 8 KiB.
 */
import { isIP } from 'node:net';
import { DEFAULT_GOSSIP_DATAGRAM_BYTES } from '../../gossip-edge/index.js';

export interface GossipRelayConfig {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
  readonly fanout: number;
  readonly maxDatagramBytes: number;
}

const FIELDS = new Set(['enabled', 'host', 'port', 'fanout', 'maxDatagramBytes']);
export const DEFAULT_RELAY_FANOUT = 3;

/** Parses the block; `fail` throws the config error naming the field. */
export function parseGossipConfig(
  v: unknown,
  leafHost: string,
  fail: (msg: string) => never,
): GossipRelayConfig {
  const c = (v ?? {}) as Record<string, unknown>;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) fail('gossip: must be an object');
  for (const k of Object.keys(c)) if (!FIELDS.has(k)) fail(`gossip.${k}: unknown field`);
  const int = (name: string, min: number, max: number, dflt: number): number => {
    const x = c[name] ?? dflt;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max)
      fail(`gossip.${name}: must be a whole number in ${min}..${max}`);
    return x as number;
  };
  const enabled = c['enabled'] ?? true;
  if (typeof enabled !== 'boolean') fail('gossip.enabled: must be true or false');
  const host = c['host'] ?? (isIP(leafHost) !== 0 ? leafHost : '127.0.0.1');
  if (typeof host !== 'string' || isIP(host) === 0) fail('gossip.host: must be a literal IP address');
  return {
    enabled: enabled as boolean,
    host: host as string,
    port: int('port', 0, 65535, 0),
    fanout: int('fanout', 1, 32, DEFAULT_RELAY_FANOUT),
    maxDatagramBytes: int('maxDatagramBytes', 512, 65507, DEFAULT_GOSSIP_DATAGRAM_BYTES),
  };
}
