/**
 * Shared shape of a `keyglass` subcommand. Each subcommand lives in its own file and is
 * registered in `main.ts`. A subcommand throws `CliError` for anything the user can fix;
 * `main` prints it as one line on stderr and exits non-zero — never a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface Command {
  /** e.g. 'ca', 'server', 'demo'. */
  readonly name: string;
  /** One line for the top-level help. */
  readonly summary: string;
  /** Full help text printed by `keyglass <name> --help`. */
  readonly help: string;
  /** Help of each subcommand (`keyglass <name> <sub> --help`), for commands that have them. */
  readonly subcommandHelp?: Readonly<Record<string, string>>;
  /** Runs with the arguments after the command name; returns the exit code. */
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** `node:util` parseArgs with errors turned into one-line `CliError`s. */
export function parseFlags<O extends Options>(
  argv: string[],
  options: O,
  allowPositionals = false,
): {
  values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: boolean; strict: true }>>['values'];
  positionals: string[];
} {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values, positionals };
  } catch (e) {
    throw new CliError((e as Error).message.split('\n')[0] ?? 'bad arguments', 2);
  }
}
