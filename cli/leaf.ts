/**
 * `keyglass leaf --config FILE` — a leaf on the shell: prints key, message and eviction events
 * (one JSON object per line on stdout) and publishes each stdin line to the group.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { weakKeyFileWarning } from '../auth/index.js';
import { LeafClient } from '../leaf-sdk/index.js';
import { CliError, parseFlags, type Command } from './command.js';
import { joinFailure } from './join-failure.js';

const HELP = `Usage: keyglass leaf --config FILE

Config (JSON; relative paths are relative to the file):
  { "servers": ["host:port", ...], "cert": "leaf.pem", "key": "leaf.key",
    "passphraseFile": "pw.txt" | "passphraseEnv": "VAR", "trustAnchors": "ca.pem",
    "crl": "ca.crl", "crlPollMs": 1000, "requireFreshCrl": false }

"crl" (optional): the CA's CRL; core servers it revokes are refused. The file is reloaded when
it changes (checked every crlPollMs); an older CRL than the one held is ignored. Servers also
bring newer CRLs in band. "requireFreshCrl": refuse servers while the CRL is past nextUpdate.

Prints {"event":"key"|"message"|"evicted"|"connected"|"crl"|"error",...} lines; each stdin line
is published (sealed under the current group key). End of input leaves the group, prints
{"event":"closed","stats":{...}} (the client's counters) and exits.`;

/** How often the `crl` file is checked for changes, by default and at most/least. */
export const DEFAULT_CRL_POLL_MS = 1000;
const MIN_CRL_POLL_MS = 50;
const MAX_CRL_POLL_MS = 3_600_000;

export interface LeafConfig {
  servers: { host: string; port: number }[];
  certPem: string;
  keyPem: string;
  keyFile: string;
  passphrase?: string;
  caPem: string;
  /** Absolute path of the CRL file, and its text at start. */
  crl?: { path: string; pem: string };
  crlPollMs: number;
  requireFreshCrl: boolean;
}

function read(base: string, v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') throw new CliError(`${field}: must be a file path`);
  try {
    return readFileSync(resolve(base, v), 'utf8');
  } catch (e) {
    throw new CliError(`${field}: cannot read ${v} (${(e as NodeJS.ErrnoException).code})`);
  }
}

export function loadLeafConfig(file: string): LeafConfig {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CliError(`config ${file}: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null) throw new CliError('config: must be an object');
  const base = dirname(resolve(file));
  const servers = json['servers'];
  if (!Array.isArray(servers) || servers.length === 0)
    throw new CliError('servers: must be a non-empty list of host:port');
  const parsed = servers.map((s, i) => {
    const m = typeof s === 'string' ? /^(.+):([0-9]{1,5})$/.exec(s) : null;
    if (!m) throw new CliError(`servers[${i}]: not host:port`);
    return { host: m[1]!, port: Number(m[2]) };
  });
  let passphrase: string | undefined;
  if (json['passphraseFile'] !== undefined)
    passphrase = read(base, json['passphraseFile'], 'passphraseFile').replace(/\r?\n$/, '');
  else if (typeof json['passphraseEnv'] === 'string') {
    passphrase = process.env[json['passphraseEnv']];
    if (passphrase === undefined) throw new CliError(`passphraseEnv: ${json['passphraseEnv']} is not set`);
  }
  let crl: LeafConfig['crl'];
  if (json['crl'] !== undefined)
    crl = { path: resolve(base, String(json['crl'])), pem: read(base, json['crl'], 'crl') };
  const crlPollMs = json['crlPollMs'] ?? DEFAULT_CRL_POLL_MS;
  if (
    typeof crlPollMs !== 'number' ||
    !Number.isInteger(crlPollMs) ||
    crlPollMs < MIN_CRL_POLL_MS ||
    crlPollMs > MAX_CRL_POLL_MS
  )
    throw new CliError(`crlPollMs: must be an integer ${MIN_CRL_POLL_MS}..${MAX_CRL_POLL_MS}`);
  const requireFreshCrl = json['requireFreshCrl'] ?? false;
  if (typeof requireFreshCrl !== 'boolean') throw new CliError('requireFreshCrl: must be true or false');
  return {
    crlPollMs,
    requireFreshCrl,
    ...(crl !== undefined ? { crl } : {}),
    servers: parsed,
    certPem: read(base, json['cert'], 'cert'),
    keyPem: read(base, json['key'], 'key'),
    keyFile: resolve(base, json['key'] as string),
    ...(passphrase !== undefined ? { passphrase } : {}),
    caPem: read(base, json['trustAnchors'], 'trustAnchors'),
  };
}

const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

/**
 * Watches a CRL file and hands its text to `apply` whenever it changes (one load at a time; a
 * change during a load is picked up by the next poll). Returns the function that stops watching.
 */
export function watchCrlFile(
  path: string,
  intervalMs: number,
  apply: (pem: string) => Promise<{ applied: number; ignored: number }>,
  report: (o: Record<string, unknown>) => void,
): () => void {
  let loading = false;
  const onChange = (): void => {
    if (loading) return;
    loading = true;
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (e) {
      loading = false;
      return report({
        event: 'error',
        error: `crl: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`,
      });
    }
    apply(pem)
      .then((r) => report({ event: 'crl', path, ...r }))
      .catch((e: unknown) => report({ event: 'error', error: `crl: ${(e as Error).message}` }))
      .finally(() => {
        loading = false;
      });
  };
  watchFile(path, { interval: intervalMs, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}

export const leafCommand: Command = {
  name: 'leaf',
  summary: 'join a leaf group from the shell: print events, publish stdin lines (--config FILE)',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string' } });
    if (values.config === undefined) throw new CliError('--config is required', 2);
    const cfg = loadLeafConfig(values.config);
    const weakKey = weakKeyFileWarning(cfg.keyPem, cfg.keyFile);
    if (weakKey !== undefined) process.stderr.write(`keyglass leaf: warning: ${weakKey}\n`);
    const client = new LeafClient({ requireFreshCrl: cfg.requireFreshCrl });
    client.on('key', (k) => out({ event: 'key', ...k }));
    client.on('connected', (c) => out({ event: 'connected', ...c }));
    client.on('evicted', (e) => out({ event: 'evicted', ...e }));
    client.on('error', (e) => out({ event: 'error', error: e.message }));
    client.on('message', (m) =>
      out({
        event: 'message',
        sender: m.sender,
        seq: m.seq,
        epoch: m.epoch,
        data: new TextDecoder().decode(m.data),
      }),
    );
    try {
      await client.connect({
        servers: cfg.servers,
        credentials: {
          certPem: cfg.certPem,
          keyPem: cfg.keyPem,
          ...(cfg.passphrase !== undefined ? { passphrase: cfg.passphrase } : {}),
        },
        trust: { caPem: cfg.caPem, ...(cfg.crl !== undefined ? { crlPem: cfg.crl.pem } : {}) },
      });
    } catch (e) {
      throw new CliError(`cannot join: ${joinFailure(e)}`);
    }
    const unwatch =
      cfg.crl !== undefined
        ? watchCrlFile(cfg.crl.path, cfg.crlPollMs, (pem) => client.updateCrl(pem), out)
        : undefined;
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (line === '') continue;
      try {
        if (!client.publish(new TextEncoder().encode(line)))
          out({ event: 'error', error: 'publish refused (link busy)' });
      } catch (e) {
        out({ event: 'error', error: (e as Error).message });
      }
    }
    unwatch?.();
    await client.close();
    out({ event: 'closed', stats: client.stats });
    return 0;
  },
};
