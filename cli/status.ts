/** `keyglass status --admin HOST:PORT [--json]` — a core server's /status, for people. */
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
      const res = await fetch(`http://${values.admin}/status`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new CliError(`${values.admin} answered HTTP ${res.status}`);
      body = await res.text();
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`cannot reach ${values.admin} (${(e as Error).message})`);
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
