/**
 * Where `keyglass ca` gets passphrases: a file (first line), an environment variable, or
 * a no-echo prompt when a terminal is attached — in that order. Without any of them the
 * command fails with one line that names the options, rather than hang on a pipe.
 */
import { readFileSync } from 'node:fs';
import { newPassphraseProblem } from '../auth/index.js';
import { CliError } from './command.js';

const MAX_PASSPHRASE_BYTES = 1024;

export interface PassphraseSource {
  readonly file: string | undefined;
  readonly envVar: string;
  readonly what: string; // 'CA key passphrase'
  readonly fileFlag: string; // '--passphrase-file'
}

function fromFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${what} file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line.length === 0) throw new CliError(`${what} file ${path} is empty`);
  if (Buffer.byteLength(line) > MAX_PASSPHRASE_BYTES)
    throw new CliError(`${what} is longer than ${MAX_PASSPHRASE_BYTES} bytes`);
  return line;
}

/** Reads one line from the terminal without echo. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    process.stderr.write(question);
    let answer = '';
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('cancelled'));
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else if (answer.length < MAX_PASSPHRASE_BYTES) answer += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * Resolves a passphrase. `creating` (a new key is about to be encrypted under it) asks twice on a
 * terminal and refuses a passphrase shorter than MIN_PASSPHRASE_CHARS; unlocking an existing key
 * takes any, so keys written before the minimum still open.
 */
export async function resolvePassphrase(src: PassphraseSource, creating: boolean): Promise<string> {
  const checked = (p: string): string => {
    const problem = creating ? newPassphraseProblem(p, src.what) : undefined;
    if (problem !== undefined) throw new CliError(problem);
    return p;
  };
  if (src.file !== undefined) return checked(fromFile(src.file, src.what));
  const env = process.env[src.envVar];
  if (env !== undefined && env !== '') return checked(env);
  if (process.stdin.isTTY && process.stderr.isTTY) {
    const first = await promptHidden(`${src.what}: `);
    if (first.length === 0) throw new CliError(`empty ${src.what}`);
    checked(first);
    if (creating && (await promptHidden(`repeat ${src.what}: `)) !== first)
      throw new CliError(`${src.what}s do not match`);
    return first;
  }
  throw new CliError(
    `no ${src.what}: give ${src.fileFlag}, set ${src.envVar}, or run on a terminal (--insecure-no-passphrase to store the key unencrypted)`,
  );
}
