/** `keyglass server --config FILE` — runs one core key server until SIGTERM/SIGINT. */
import { ConfigError, KeyServer, ServerStartError, loadServerConfig } from '../core-group/server/index.js';
import { CredentialError, CrlError } from '../auth/index.js';
import { CliError, parseFlags, type Command } from './command.js';

const HELP = `Usage: keyglass server --config FILE

Runs a core key server: the core mesh (TLS 1.3 mutual auth, core certificates only), the leaf
port (leaf certificates of the group), and the admin HTTP port (/metrics, /healthz, /status).
Logs are JSON lines on stderr. SIGTERM or SIGINT stops it.

Config (JSON; relative paths are relative to the file; the README has the full reference):
  name, group, listen { core, leaf, admin: "host:port" }, peers { <name>: "host:port" },
  credentials { cert, key, passphraseFile | passphraseEnv }, trustAnchors, crl (polled),
  dataDir, batchIntervalMs (100), leaseMs (30000), signingKeyFile (when the key is not
  Ed25519), admissionPolicy, logLevel (info), crlPollMs (1000), handshakeTimeoutMs (10000),
  generation (0; bump in every config to restart a group whose servers all went down),
  coreKeyRefreshMs (600000; 0 = rekey the core only on view changes),
  gossip { enabled (true), host, port (0), fanout (3), maxDatagramBytes (8192) }.

Exit codes: 0 after SIGTERM or SIGINT, 1 bad config or start failure, 2 bad arguments (one line
on stderr, never a stack trace).`;

export const serverCommand: Command = {
  name: 'server',
  summary: 'run a core key server (--config FILE)',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string' } });
    if (values.config === undefined) throw new CliError('--config is required', 2);
    let server: KeyServer;
    try {
      server = await KeyServer.start(loadServerConfig(values.config));
    } catch (e) {
      if (
        e instanceof ConfigError ||
        e instanceof ServerStartError ||
        e instanceof CredentialError ||
        e instanceof CrlError
      )
        throw new CliError(e.message);
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError((e as Error).message);
      throw e;
    }
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        void server.stop().then(resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    return 0;
  },
};
