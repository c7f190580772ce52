/**
 * The optional `gossip` block of a server config (the edge relay's UDP side):
 *   "gossip": { "enabled": true, "host": "127.0.0.1", "port": 0, "fanout": 3, "maxDatagramBytes": 8192,
 *               "historyItems": 4096, "historyBytes": 16777216, "pullBytesPerSec": 4194304 }
 * Every field is optional: enabled by default, bound to the leaf listener's host when that is a
 * literal IP (else 127.0.0.1), ephemeral port (leaves learn the relay's address from its
 * datagrams; they never send to it), fan-out 3, datagrams ≤ 8 KiB; the data stream's history
 * that leaves pull gaps from keeps the last 4096 entries / 16 MiB, and pull replies are sent at
 * up to 4 MiB/s over all the server's leaves.
 */
import { isIP } from 'node:net';
import { DEFAULT_GOSSIP_DATAGRAM_BYTES } from '../gossip-edge/index.js';
import { DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_ITEMS } from '../gossip-edge/index.js';
import { DEFAULT_PULL_BYTES_PER_SEC } from '../gossip-edge/index.js';

export interface GossipRelayConfig {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
  readonly fanout: number;
  readonly maxDatagramBytes: number;
  readonly history: { readonly maxItems: number; readonly maxBytes: number };
  readonly pullBytesPerSec: number;
}

/** Every field of the block (`keyglass server --help` lists them all as gossip.<field>). */
export const GOSSIP_CONFIG_FIELDS: readonly string[] = [
  'enabled',
  'host',
  'port',
  'fanout',
  'maxDatagramBytes',
  'historyItems',
  'historyBytes',
  'pullBytesPerSec',
];
const FIELDS = new Set(GOSSIP_CONFIG_FIELDS);
const MIB = 1024 * 1024;
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
    history: {
      maxItems: int('historyItems', 1, 1 << 20, DEFAULT_HISTORY_ITEMS),
      maxBytes: int('historyBytes', 64 * 1024, 1024 * MIB, DEFAULT_HISTORY_BYTES),
    },
    // At least a largest datagram a second: the budget holds one second's worth, and an entry
    // (≤ one datagram) that never fits it could never be pulled.
    pullBytesPerSec: int('pullBytesPerSec', 65536, 1024 * MIB, DEFAULT_PULL_BYTES_PER_SEC),
  };
}
