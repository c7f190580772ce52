/** `keyglass server --config FILE` — runs one core key server until SIGTERM/SIGINT. */
import { ConfigError, KeyServer, ServerStartError, loadServerConfig } from '../server/index.js';
import { CredentialError, CrlError } from '../auth/index.js';
import { CliError, parseFlags, type Command } from './command.js';

const HELP = `Usage: keyglass server --config FILE

Runs a core key server: the core mesh (TLS 1.3 mutual auth, core certificates only), the leaf
port (leaf certificates of the group), and the admin HTTP port (/metrics, /healthz, /readyz,
/status). Logs are JSON lines on stderr. SIGTERM or SIGINT stops it. SIGHUP reads the config
again and applies trustAnchors, credentials (new links use the new certificate), the CRL and
logLevel; a file that does not load keeps its old value (logged).

Config (JSON; relative paths are relative to the file; the README has the full reference):
  name, group, listen { core, leaf, admin: "host:port" }, peers { <name>: "host:port" },
  credentials { cert, key, passphraseFile | passphraseEnv }, trustAnchors, crl (polled),
  dataDir, batchIntervalMs (100), leaseMs (30000), signingKeyFile (when the key is not
  Ed25519), admissionPolicy, logLevel (info), crlPollMs (1000), handshakeTimeoutMs (10000),
  generation (0; disaster recovery only: raise in every config when a majority of the last
  primary view is lost for good — a full outage heals by itself),
  coreKeyRefreshMs (600000; 0 = rekey the core only on view changes),
  leafKeyRefreshMs (86400000; each linked leaf's own key is also refreshed at every re-link),
  fullRefreshWindowMs (1800000; after a core revocation, unrefreshed leaves are then evicted),
  leafRequestsPerSec (20), leafRequestBurst (40), catchUpBytesPerSec (16777216),
  leafTlsThread (true),
  gossip { enabled (true), host, port (0), fanout (3), maxDatagramBytes (8192), historyItems
  (4096), historyBytes (16777216), pullBytesPerSec (4194304) }.

Exit codes: 0 after SIGTERM or SIGINT, 1 bad config or start failure (a port in use, an
unreadable key, a wrong passphrase, a data directory in use by another server), 2 bad arguments
(one line on stderr, never a stack trace).`;

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
      throw e;
    }
    const configFile = values.config;
    // One reload at a time; a SIGHUP during one runs another after it (the files may have changed).
    let reloading: Promise<void> = Promise.resolve();
    const reload = (): void => {
      reloading = reloading.then(async () => {
        server.log.info('SIGHUP: reloading', { config: configFile });
        try {
          await server.reload(loadServerConfig(configFile));
        } catch (e) {
          server.log.warn('reload failed: the running configuration is kept', {
            error: (e as Error).message,
          });
        }
      });
    };
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        process.off('SIGHUP', reload);
        void server.stop().then(resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    return 0;
  },
};
