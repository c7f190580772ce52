/**
 * `keyglass server` configuration: a JSON file, validated field by field. Every error is one
 * line naming the field (`ConfigError`), so an operator can fix it without reading code.
 *
 * {
 *   "name": "core-1",                         certificate name of this server (SAN keyglass://<group>/core/<name>)
 *   "group": "g",
 *   "listen": { "core": "127.0.0.1:7001", "leaf": "127.0.0.1:7101", "admin": "127.0.0.1:7201" },
 *   "peers": { "core-2": "127.0.0.1:7002", "core-3": "127.0.0.1:7003" },   the other core servers
 *                                              (optional: none = a group of one server)
 *   "credentials": { "cert": "core-1.pem", "key": "core-1.key",
 *                    "passphraseFile": "pw.txt" | "passphraseEnv": "KEYGLASS_KEY_PASSPHRASE" },
 *   "trustAnchors": "ca.pem",
 *   "crl": "ca.crl",                           optional; polled and reloaded on change
 *   "dataDir": "/var/lib/keyglass/core-1",
 *   "batchIntervalMs": 100, "leaseMs": 30000,  optional
 *   "signingKeyFile": "sign.key",              optional: 32-byte Ed25519 seed, hex (needed when the
 *                                              certificate key is not Ed25519)
 *   "admissionPolicy": { "groups": { … } },    optional (auth parseAdmissionPolicy)
 *   "logLevel": "info"                         optional: debug | info | warn | error
 *   "handshakeTimeoutMs": 10000               optional
 *   "generation": 0                            optional: bump in every config to restart a group
 *                                              whose servers all went down
 *   "coreKeyRefreshMs": 600000                 optional: replace the core key this often inside a
 *                                              view (it is replaced on every view change anyway);
 *                                              0 = only on view changes
 *   "leafKeyRefreshMs": 86400000               optional: refresh each linked leaf's own key at least
 *                                              this often (it is refreshed on every new session too)
 *   "fullRefreshWindowMs": 1800000             optional: after a core server's revocation, leaves
 *                                              whose own key is not refreshed within this are evicted
 *   "gossip": { "enabled": true, "host": "127.0.0.1", "port": 0, "fanout": 3, "maxDatagramBytes": 8192,
 *               "historyItems": 4096, "historyBytes": 16777216, "pullBytesPerSec": 4194304 }
 *                                              optional: the edge relay (gossip-config.ts)
 *   "leafTlsThread": true                      optional: run the leaf port's TLS on a worker
 *                                              thread (leaf-port.ts); false = on the main thread
 *   "leafRequestsPerSec": 20, "leafRequestBurst": 40
 *                                              optional: what one leaf may ask that costs the
 *                                              server (catch-up, join, gossip hello/reseed):
 *                                              a token bucket per leaf (request-limiter.ts)
 *   "catchUpBytesPerSec": 16777216             optional: catch-up reply bytes per second over
 *                                              all leaves (leaf-edge.ts)
 * }
 * Relative paths are resolved against the config file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isValidName, parseAdmissionPolicy, PolicyError, type AdmissionPolicy } from '../auth/index.js';
import { LOG_LEVELS, type LogLevel } from './log.js';
import { parseGossipConfig, type GossipRelayConfig } from './gossip-config.js';
import {
  DEFAULT_CATCH_UP_BYTES_PER_SEC,
  DEFAULT_LEAF_REQUEST_LIMITS,
  type RequestLimits,
} from '../gossip-edge/index.js';
import { MAX_LEAF_FRAME_BYTES } from '../gossip-edge/index.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  readonly name: string;
  readonly group: string;
  readonly listen: { readonly core: HostPort; readonly leaf: HostPort; readonly admin: HostPort };
  /** The other core servers, by certificate name (self excluded). */
  readonly peers: ReadonlyMap<string, HostPort>;
  readonly credentials: { readonly cert: string; readonly key: string; readonly passphrase?: string };
  readonly trustAnchors: string;
  readonly crl?: string;
  readonly dataDir: string;
  readonly batchIntervalMs: number;
  readonly leaseMs: number;
  readonly signingKeyFile?: string;
  readonly admissionPolicy?: AdmissionPolicy;
  readonly logLevel: LogLevel;
  /** How often the CRL file is polled (ms). */
  readonly crlPollMs: number;
  /**
   * Cluster generation: the founders of the genesis view are every configured server at the
   * first incarnation of this generation. Bump it in every config to restart a whole group
   * whose servers all went down (see key-server.ts, Incarnations).
   */
  readonly generation: number;
  /** TLS handshake plus link hello on every port (ms): bounds what a silent or garbage client holds. */
  readonly handshakeTimeoutMs: number;
  /** Core key refresh inside a view (ms); 0 = only on view changes. */
  readonly coreKeyRefreshMs: number;
  /** Post-compromise recovery: the longest a linked leaf keeps one own key (ms). */
  readonly leafKeyRefreshMs: number;
  /** Post-compromise recovery: how long leaves have to be refreshed after a core revocation (ms). */
  readonly fullRefreshWindowMs: number;
  /** The edge relay into the leaves' UDP gossip overlay. */
  readonly gossip: GossipRelayConfig;
  /** The leaf port's TLS on a worker thread (default) rather than the main thread. */
  readonly leafTlsThread: boolean;
  /** Per leaf: requests that cost the server (catch-up, join, gossip hello/reseed) per second, and burst. */
  readonly leafRequests: RequestLimits;
  /** Catch-up reply bytes per second over all leaves. */
  readonly catchUpBytesPerSec: number;
}

export const DEFAULT_BATCH_INTERVAL_MS = 100;
export const DEFAULT_SERVER_LEASE_MS = 30_000;
export const DEFAULT_CORE_KEY_REFRESH_MS = 10 * 60_000;
/** A non-zero refresh shorter than this would keep the core group rekeying back to back. */
export const MIN_CORE_KEY_REFRESH_MS = 1000;
export const DEFAULT_LEAF_KEY_REFRESH_MS = 24 * 3600_000;
/** Below this, own-key refreshes of many leaves would keep the tree rekeying back to back. */
export const MIN_LEAF_KEY_REFRESH_MS = 10_000;
/** A full refresh at 10^6 leaves takes minutes of batches (bench leaf-refresh): room for it. */
export const DEFAULT_FULL_REFRESH_WINDOW_MS = 30 * 60_000;
export const MIN_FULL_REFRESH_WINDOW_MS = 1000;
/** The core group supports up to 64 servers (DESIGN.md). */
export const MAX_CORE_SERVERS = 64;
/** Generations × INCARNATIONS_PER_GENERATION must stay a safe integer. */
export const MAX_GENERATION = 2 ** 20;
export const INCARNATIONS_PER_GENERATION = 2 ** 30;

/**
 * Every field the parser accepts (anything else is refused as an unknown field, so a typo is an
 * error, not a silent default). `keyglass server --help` lists exactly these (test/cli/server-help).
 */
export const SERVER_CONFIG_FIELDS: readonly string[] = [
  'name',
  'group',
  'listen',
  'peers',
  'credentials',
  'trustAnchors',
  'crl',
  'dataDir',
  'batchIntervalMs',
  'leaseMs',
  'signingKeyFile',
  'admissionPolicy',
  'logLevel',
  'crlPollMs',
  'generation',
  'handshakeTimeoutMs',
  'coreKeyRefreshMs',
  'leafKeyRefreshMs',
  'fullRefreshWindowMs',
  'gossip',
  'leafTlsThread',
  'leafRequestsPerSec',
  'leafRequestBurst',
  'catchUpBytesPerSec',
];
const KNOWN_FIELDS = new Set(SERVER_CONFIG_FIELDS);
export const LISTEN_FIELDS: readonly string[] = ['core', 'leaf', 'admin'];
export const CREDENTIALS_FIELDS: readonly string[] = ['cert', 'key', 'passphraseFile', 'passphraseEnv'];

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ConfigError(`${field}: must be an object`);
  return v as Json;
}

function bool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`${field}: must be true or false`);
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${field}: must be a non-empty string`);
  if (v.length > 4096) throw new ConfigError(`${field}: longer than 4096 characters`);
  return v;
}

function int(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ConfigError(`${field}: must be a whole number in ${min}..${max}`);
  return v;
}

export function parseHostPort(v: unknown, field: string): HostPort {
  const s = str(v, field);
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535))
    throw new ConfigError(`${field}: '${s}' is not host:port (port 0..65535)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Validates a parsed JSON config; `baseDir` resolves relative paths. */
export function parseServerConfig(json: unknown, baseDir: string): ServerConfig {
  const c = obj(json, 'config');
  for (const k of Object.keys(c)) if (!KNOWN_FIELDS.has(k)) throw new ConfigError(`${k}: unknown field`);
  const path = (v: unknown, field: string): string => resolve(baseDir, str(v, field));
  const name = str(c['name'], 'name');
  if (!isValidName(name)) throw new ConfigError(`name: '${name}' must be 1-64 characters of [A-Za-z0-9._-]`);
  const group = str(c['group'], 'group');
  if (!isValidName(group))
    throw new ConfigError(`group: '${group}' must be 1-64 characters of [A-Za-z0-9._-]`);
  const listen = obj(c['listen'], 'listen');
  for (const k of Object.keys(listen))
    if (!LISTEN_FIELDS.includes(k)) throw new ConfigError(`listen.${k}: unknown field`);
  const peersIn = obj(c['peers'] ?? {}, 'peers');
  const peers = new Map<string, HostPort>();
  for (const [p, addr] of Object.entries(peersIn)) {
    if (!isValidName(p)) throw new ConfigError(`peers.${p}: not a valid server name`);
    if (p === name) throw new ConfigError(`peers.${p}: a server must not list itself`);
    peers.set(p, parseHostPort(addr, `peers.${p}`));
  }
  if (peers.size + 1 > MAX_CORE_SERVERS)
    throw new ConfigError(`peers: at most ${MAX_CORE_SERVERS - 1} peers`);
  const creds = obj(c['credentials'], 'credentials');
  for (const k of Object.keys(creds))
    if (!CREDENTIALS_FIELDS.includes(k)) throw new ConfigError(`credentials.${k}: unknown field`);
  let passphrase: string | undefined;
  if (creds['passphraseFile'] !== undefined && creds['passphraseEnv'] !== undefined)
    throw new ConfigError('credentials: give passphraseFile or passphraseEnv, not both');
  if (creds['passphraseFile'] !== undefined) {
    const f = path(creds['passphraseFile'], 'credentials.passphraseFile');
    try {
      passphrase = readFileSync(f, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new ConfigError(
        `credentials.passphraseFile: cannot read ${f} (${(e as NodeJS.ErrnoException).code})`,
      );
    }
  } else if (creds['passphraseEnv'] !== undefined) {
    const env = str(creds['passphraseEnv'], 'credentials.passphraseEnv');
    passphrase = process.env[env];
    if (passphrase === undefined) throw new ConfigError(`credentials.passphraseEnv: ${env} is not set`);
  }
  let admissionPolicy: AdmissionPolicy | undefined;
  if (c['admissionPolicy'] !== undefined) {
    try {
      admissionPolicy = parseAdmissionPolicy(c['admissionPolicy']);
    } catch (e) {
      if (e instanceof PolicyError) throw new ConfigError(`admissionPolicy: ${e.message}`);
      throw e;
    }
  }
  const coreKeyRefreshMs = int(
    c['coreKeyRefreshMs'],
    'coreKeyRefreshMs',
    0,
    24 * 3600_000,
    DEFAULT_CORE_KEY_REFRESH_MS,
  );
  if (coreKeyRefreshMs > 0 && coreKeyRefreshMs < MIN_CORE_KEY_REFRESH_MS)
    throw new ConfigError(`coreKeyRefreshMs: must be 0 (off) or at least ${MIN_CORE_KEY_REFRESH_MS}`);
  const logLevel = (c['logLevel'] ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`logLevel: must be one of ${LOG_LEVELS.join(', ')}`);
  return {
    name,
    group,
    listen: {
      core: parseHostPort(listen['core'], 'listen.core'),
      leaf: parseHostPort(listen['leaf'], 'listen.leaf'),
      admin: parseHostPort(listen['admin'], 'listen.admin'),
    },
    peers,
    credentials: {
      cert: path(creds['cert'], 'credentials.cert'),
      key: path(creds['key'], 'credentials.key'),
      ...(passphrase !== undefined ? { passphrase } : {}),
    },
    trustAnchors: path(c['trustAnchors'], 'trustAnchors'),
    ...(c['crl'] !== undefined ? { crl: path(c['crl'], 'crl') } : {}),
    dataDir: path(c['dataDir'], 'dataDir'),
    batchIntervalMs: int(c['batchIntervalMs'], 'batchIntervalMs', 5, 60_000, DEFAULT_BATCH_INTERVAL_MS),
    leaseMs: int(c['leaseMs'], 'leaseMs', 500, 24 * 3600_000, DEFAULT_SERVER_LEASE_MS),
    ...(c['signingKeyFile'] !== undefined
      ? { signingKeyFile: path(c['signingKeyFile'], 'signingKeyFile') }
      : {}),
    ...(admissionPolicy !== undefined ? { admissionPolicy } : {}),
    logLevel,
    crlPollMs: int(c['crlPollMs'], 'crlPollMs', 50, 600_000, 1000),
    generation: int(c['generation'], 'generation', 0, MAX_GENERATION, 0),
    handshakeTimeoutMs: int(c['handshakeTimeoutMs'], 'handshakeTimeoutMs', 100, 120_000, 10_000),
    coreKeyRefreshMs,
    leafKeyRefreshMs: int(
      c['leafKeyRefreshMs'],
      'leafKeyRefreshMs',
      MIN_LEAF_KEY_REFRESH_MS,
      30 * 24 * 3600_000,
      DEFAULT_LEAF_KEY_REFRESH_MS,
    ),
    fullRefreshWindowMs: int(
      c['fullRefreshWindowMs'],
      'fullRefreshWindowMs',
      MIN_FULL_REFRESH_WINDOW_MS,
      24 * 3600_000,
      DEFAULT_FULL_REFRESH_WINDOW_MS,
    ),
    gossip: parseGossipConfig(c['gossip'], parseHostPort(listen['leaf'], 'listen.leaf').host, (msg) => {
      throw new ConfigError(msg);
    }),
    leafTlsThread: bool(c['leafTlsThread'], 'leafTlsThread', true),
    leafRequests: {
      perSec: int(
        c['leafRequestsPerSec'],
        'leafRequestsPerSec',
        1,
        10_000,
        DEFAULT_LEAF_REQUEST_LIMITS.perSec,
      ),
      burst: int(c['leafRequestBurst'], 'leafRequestBurst', 1, 100_000, DEFAULT_LEAF_REQUEST_LIMITS.burst),
    },
    // At least a largest reply a second: a budget below one reply could never serve it.
    catchUpBytesPerSec: int(
      c['catchUpBytesPerSec'],
      'catchUpBytesPerSec',
      MAX_LEAF_FRAME_BYTES,
      1024 * 1024 * 1024,
      DEFAULT_CATCH_UP_BYTES_PER_SEC,
    ),
  };
}

/** Reads and validates a config file. */
export function loadServerConfig(file: string): ServerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text.length > 1024 * 1024) throw new ConfigError(`config ${file}: larger than 1 MiB`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${file}: not JSON (${(e as Error).message})`);
  }
  return parseServerConfig(json, dirname(resolve(file)));
}
