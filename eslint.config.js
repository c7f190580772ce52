import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layer rule (DESIGN.md "Folders and the direction of imports"): a room imports only rooms
 * below it, and only through their index.ts; production code never loads the simulator
 * (net/sim) and bench/ never imports test/. Ranks, lowest first; rooms of one rank do not import
 * each other.
 */
const RANK = {
  crypto: 0,
  wire: 0,
  net: 1,
  auth: 2,
  keytree: 2,
  'ca-tools': 3,
  'gossip-edge': 3,
  'core-group': 4,
  'leaf-plane': 5,
  server: 6,
  'leaf-sdk': 6,
  sim: 7,
  cli: 8,
};
const ROOMS = Object.keys(RANK);
const layerRules = ROOMS.map((room) => {
  const above = ROOMS.filter((r) => r !== room && RANK[r] >= RANK[room]);
  const below = ROOMS.filter((r) => RANK[r] < RANK[room]);
  const patterns = [
    {
      regex: `^(\\.\\./)+(${[...above, 'test', 'bench'].join('|')})/`,
      message: `${room}/ may import only rooms below it (${below.join(', ') || 'none'}): DESIGN.md layer order.`,
    },
    {
      regex: `^(\\.\\./)+(${below.join('|') || '$^'})/(?!(sim/)?index\\.js$)`,
      message: 'Import another room through its index.ts, its public face.',
    },
  ];
  if (room !== 'cli' && room !== 'sim')
    patterns.push({
      regex: '^(\\.\\./)+net/sim/',
      message: 'Production code never loads the simulator (net/sim).',
    });
  return { files: [`${room}/**/*.ts`], rules: { 'no-restricted-imports': ['error', { patterns }] } };
});

/**
 * Sans-IO rooms: protocol logic owns no clock, timer, socket or file (DESIGN.md), with no
 * exception inside a room: hosts live in the host rooms (server/, leaf-sdk/). The leaf plane's
 * server side (leaf-plane/server-plane.ts, edge.ts, command-outbox.ts) is a machine like the
 * others: KeyServer hosts it; the gossip tier's two ends (gossip-edge/gossip-link.ts,
 * gossip-relay.ts) are hosted by leaf-sdk/gossip-socket.ts and server/edge-relay-socket.ts.
 */
const sansIo = {
  files: [
    'wire/**/*.ts',
    'keytree/**/*.ts',
    'core-group/**/*.ts',
    'leaf-plane/**/*.ts',
    'gossip-edge/**/*.ts',
    // The leaf side of the leaf protocol; leaf-client.ts beside it is its host.
    'leaf-sdk/session.ts',
    'leaf-sdk/session-*.ts',
  ],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        paths: [
          'node:net',
          'node:tls',
          'node:dgram',
          'node:fs',
          'node:fs/promises',
          'node:timers',
          'node:http',
        ].map((name) => ({ name, message: 'A sans-IO room takes no socket, file or timer: its host does.' })),
      },
    ],
    'no-restricted-globals': [
      'error',
      'setTimeout',
      'setInterval',
      'setImmediate',
      'clearTimeout',
      'clearInterval',
      'queueMicrotask',
    ].map((x) => (x === 'error' ? x : { name: x, message: 'A sans-IO machine asks for timers as effects.' })),
    'no-restricted-properties': [
      'error',
      { object: 'Date', property: 'now', message: 'A sans-IO machine is handed `now`.' },
      { object: 'performance', property: 'now', message: 'A sans-IO machine is handed `now`.' },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'dist-*/**', 'node_modules/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...layerRules,
  sansIo,
  {
    files: ['bench/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(\\.\\./)+test/', message: 'bench/ never imports test/ (DESIGN.md).' }] },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
