/**
 * Every `keyglass` command and `ca` subcommand answers `--help` with its own usage on stdout and
 * exit 0; a missing or unknown command is one stderr line and a non-zero exit.
 */
import test from 'ava';
import { keyglass } from '../ca/run-cli.js';

const COMMANDS = ['ca', 'server', 'leaf', 'status', 'demo'] as const;
const CA_SUBCOMMANDS = ['init', 'issue', 'revoke', 'crl', 'list', 'inspect'] as const;

test('top-level --help lists every command', async (t) => {
  const r = await keyglass(['--help']);
  t.is(r.code, 0);
  for (const c of COMMANDS) t.regex(r.stdout, new RegExp(`^  ${c} `, 'm'));
});

for (const c of COMMANDS) {
  test(`keyglass ${c} --help prints its usage`, async (t) => {
    const r = await keyglass([c, '--help']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`^Usage: keyglass ${c}\\b`));
    t.is(r.stderr, '');
  });
}

for (const s of CA_SUBCOMMANDS) {
  test(`keyglass ca ${s} --help prints that subcommand's usage`, async (t) => {
    const r = await keyglass(['ca', s, '--help']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`^Usage: keyglass ca ${s}\\b`));
  });
}

test('no command and an unknown command exit non-zero with one line on stderr', async (t) => {
  const none = await keyglass([]);
  t.not(none.code, 0);
  const bogus = await keyglass(['bogus']);
  t.not(bogus.code, 0);
  t.is(bogus.stderr.trim().split('\n').length, 1);
  t.regex(bogus.stderr, /unknown command 'bogus'/);
});
