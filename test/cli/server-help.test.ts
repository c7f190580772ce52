/**
 * `keyglass server --help` lists every config field the parser accepts, and nothing else: a field
 * added to the parser without a help line (or a help line for a field that is gone) fails here.
 */
import test from 'ava';
import { serverCommand } from '../../cli/server.js';
import {
  CREDENTIALS_FIELDS,
  GOSSIP_CONFIG_FIELDS,
  LISTEN_FIELDS,
  SERVER_CONFIG_FIELDS,
  parseServerConfig,
} from '../../server/index.js';

/** The field names of the help's config section: the first word of each field line. */
function helpFields(help: string): string[] {
  const start = help.indexOf('\nConfig (JSON');
  const end = help.indexOf('\n\n', help.indexOf('Every field the server reads', start));
  const section = help.slice(start, end).split('\n');
  return section
    .map((l) => /^ {2}([A-Za-z][A-Za-z.]*)\s/.exec(l)?.[1])
    .filter((f): f is string => f !== undefined);
}

/** Every field the parser accepts, objects with fixed members as <object>.<member>. */
function parserFields(): string[] {
  const members: Record<string, readonly string[]> = {
    listen: LISTEN_FIELDS,
    credentials: CREDENTIALS_FIELDS,
    gossip: GOSSIP_CONFIG_FIELDS,
  };
  return SERVER_CONFIG_FIELDS.flatMap((f) => (members[f] ? members[f].map((m) => `${f}.${m}`) : [f]));
}

test('server --help lists exactly the config fields the parser accepts', (t) => {
  const shown = helpFields(serverCommand.help);
  t.true(shown.length > 30, `found ${shown.length} field lines`);
  t.deepEqual([...shown].sort(), [...new Set(shown)].sort(), 'each field once');
  t.deepEqual([...shown].sort(), parserFields().sort());
  for (const f of ['leafTlsThread', 'gossip.historyItems', 'gossip.historyBytes', 'gossip.pullBytesPerSec'])
    t.true(shown.includes(f), f);
});

test('the field lists are what the parser enforces: a field outside them is refused by name', (t) => {
  const base = {
    name: 'core-1',
    group: 'g',
    listen: { core: '127.0.0.1:1', leaf: '127.0.0.1:2', admin: '127.0.0.1:3' },
    credentials: { cert: 'c.pem', key: 'c.key' },
    trustAnchors: 'ca.pem',
    dataDir: 'data',
  };
  t.notThrows(() => parseServerConfig(base, '/tmp'));
  const bad: [object, RegExp][] = [
    [{ ...base, peerz: {} }, /^peerz: unknown field$/],
    [{ ...base, listen: { ...base.listen, metrics: '127.0.0.1:4' } }, /^listen\.metrics: unknown field$/],
    [
      { ...base, credentials: { ...base.credentials, passphrasefile: 'pw' } },
      /^credentials\.passphrasefile: unknown field$/,
    ],
    [{ ...base, gossip: { historyitems: 1 } }, /^gossip\.historyitems: unknown field$/],
  ];
  for (const [config, message] of bad) t.throws(() => parseServerConfig(config, '/tmp'), { message });
});
