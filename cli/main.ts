/** Entry point of the `keyglass` command: dispatches to subcommands. */
import { packageVersion } from '../server/index.js';
import { CliError, type Command } from './command.js';
import { caCommand } from './ca.js';
import { demoCommand } from './demo.js';
import { serverCommand } from './server.js';
import { leafCommand } from './leaf.js';
import { statusCommand } from './status.js';

const commands: readonly Command[] = [caCommand, demoCommand, serverCommand, leafCommand, statusCommand];

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'keyglass — group key management: a virtually synchronous core of key servers and a gossip tier of leaves',
    '',
    'Usage: keyglass <command> [options]     (keyglass <command> --help for details)',
    '       keyglass --version                 (or -V: print the version)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    const version = packageVersion();
    if (version === undefined) throw new Error('package.json has no version');
    console.log(version);
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`keyglass: unknown command '${name}' (try keyglass --help)`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const sub = rest[0] === undefined ? undefined : cmd.subcommandHelp?.[rest[0]];
    console.log(sub ?? cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`keyglass ${name}: ${e.message}`);
      return e.exitCode;
    }
    // An unexpected failure is still one line for the user; KEYGLASS_DEBUG=1 shows the stack.
    console.error(`keyglass ${name}: internal error: ${(e as Error)?.message ?? String(e)}`);
    if (process.env['KEYGLASS_DEBUG']) console.error(e);
    return 70;
  }
}
