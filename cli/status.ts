/** `keyglass status --admin HOST:PORT [--json]` — a core server's /status, for people. */
import { get } from 'node:http';
import type { ServerStatus } from '../server/index.js';
import { CliError, parseFlags, type Command } from './command.js';

const HELP = `Usage: keyglass status --admin HOST:PORT [--json]

Fetches http://HOST:PORT/status from a core server's admin port and prints it.`;

export function formatStatus(s: ServerStatus): string {
  return [
    `server       ${s.name} (${s.member})`,
    `view         ${s.view.id}  ${s.view.primary ? 'primary' : 'NOT primary'}${s.coordinator ? ', coordinator' : ''}`,
    `members      ${s.view.members.join(' ')}`,
    `core epoch   ${s.coreEpoch}`,
    `leaf epoch   ${s.leafEpoch}`,
    `leaves       ${s.leaves} in the tree, ${s.sessions} linked here`,
    `pending      ${s.pendingBatch} change(s) for the next batch`,
    `last batch   ${s.lastBatch === undefined ? '-' : `epoch ${s.lastBatch.epoch} applied ${new Date(s.lastBatch.appliedAtMs).toISOString()}, handed to this server's leaves in ${s.lastBatch.fanOutMs.toFixed(1)} ms`}`,
    `core links   ${s.links.length === 0 ? '-' : s.links.join(' ')}`,
    `signers      ${s.signers.join(' ')}`,
  ].join('\n');
}

const STATUS_TIMEOUT_MS = 5000;
/** A /status is a few KiB; anything far larger is not one. */
const MAX_STATUS_BYTES = 1 << 20;

/**
 * GET http://<target><path> with node:http, not fetch: fetch reports every failure as "fetch
 * failed" and, when the peer resets the connection at once, can stay pending with nothing
 * holding the process open (exit 13, no message). node:http names the error (ECONNREFUSED …).
 */
function getAdmin(target: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${target}${path}`, { timeout: STATUS_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_STATUS_BYTES) req.destroy(new Error(`answer larger than ${MAX_STATUS_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' })));
    req.on('error', reject);
  });
}

/**
 * Why a request to the admin port failed, in one line that names the error (ECONNREFUSED
 * 127.0.0.1:7201, a TLS port closing on plain HTTP, a name that does not resolve). The code is on
 * the error itself (node:http) or in its `cause` (fetch).
 */
export function describeFetchError(e: unknown, target: string): string {
  const err = e as Error & {
    cause?: { code?: unknown; errno?: unknown; address?: unknown; port?: unknown; message?: unknown };
  };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError')
    return `no answer from ${target} within ${STATUS_TIMEOUT_MS / 1000} s`;
  const cause =
    typeof (err as { code?: unknown })?.code === 'string' ? (err as typeof err.cause) : err?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const where =
    typeof cause?.address === 'string' && typeof cause?.port === 'number'
      ? `${cause.address}:${cause.port}`
      : target;
  const hint: Record<string, string> = {
    ECONNREFUSED: 'nothing listens there; is the server running, and is this its admin port (listen.admin)?',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the host name does not resolve now',
    EHOSTUNREACH: 'no route to the host',
    ECONNRESET: 'the connection was reset; a TLS port? status speaks plain HTTP to listen.admin',
    UND_ERR_SOCKET:
      'the other side closed the connection; a TLS port? status speaks plain HTTP to listen.admin',
    HPE_INVALID_CONSTANT: 'the answer is not HTTP; a TLS port? status speaks plain HTTP to listen.admin',
  };
  if (code !== undefined) return `${code} ${where}${hint[code] ? ` — ${hint[code]}` : ''}`;
  const detail = typeof cause?.message === 'string' ? cause.message : (err?.message ?? String(e));
  return `cannot reach ${target} (${detail})`;
}

export const statusCommand: Command = {
  name: 'status',
  summary: "print a core server's status (--admin HOST:PORT)",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags(argv, { admin: { type: 'string' }, json: { type: 'boolean' } });
    if (values.admin === undefined) throw new CliError('--admin HOST:PORT is required', 2);
    if (!/^[A-Za-z0-9.[\]:-]+:[0-9]{1,5}$/.test(values.admin))
      throw new CliError(`--admin '${values.admin}' is not HOST:PORT`, 2);
    let body: string;
    try {
      const res = await getAdmin(values.admin, '/status');
      body = res.body;
      if (res.status !== 200) throw new CliError(`${values.admin} answered HTTP ${res.status}`);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(describeFetchError(e, values.admin));
    }
    if (values.json) console.log(body.trim());
    else {
      let status: ServerStatus;
      try {
        status = JSON.parse(body) as ServerStatus;
      } catch {
        throw new CliError(`${values.admin} answered with something other than a status (not JSON)`);
      }
      console.log(formatStatus(status));
    }
    return 0;
  },
};
