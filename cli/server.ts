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

Config (JSON; relative paths are relative to the file; an unknown field is an error; defaults in
parentheses; the README has the full reference). Every field the server reads:
  name                         this server's certificate name (SAN keyglass://<group>/core/<name>)
  group                        the group name
  listen.core                  "host:port" of the core mesh (TLS, core certificates only)
  listen.leaf                  "host:port" of the leaf port (TLS, leaf certificates of the group)
  listen.admin                 "host:port" of the admin HTTP port (/metrics, /healthz, /status)
  peers                        optional: { "<name>": "host:port" } of every other core server
                               (none: a group of this one server; at most 63)
  credentials.cert             this server's core certificate chain (PEM)
  credentials.key              its private key (PEM; encrypted unless issued without a passphrase)
  credentials.passphraseFile   the key's passphrase in a file, or
  credentials.passphraseEnv    the name of the environment variable that holds it
  trustAnchors                 the CA certificate(s) (PEM)
  crl                          optional: the CRL file, polled every crlPollMs and reloaded on change
  crlPollMs                    (1000) 50..600000
  dataDir                      durable encrypted leaf state (one server per directory)
  batchIntervalMs              (100) joins and departures are cut into one rekey batch this often
  leaseMs                      (30000) a leaf that does not renew within this is evicted
  signingKeyFile               optional: Ed25519 seed (64 hex digits) that signs leaf rekeys
  admissionPolicy              optional: { "groups": { ... } } roles, allow and deny globs
  logLevel                     (info) debug | info | warn | error
  handshakeTimeoutMs           (10000) TLS handshake plus link hello, every port
  generation                   (0) disaster recovery only: raise in every config when a majority
                               of the last primary view is lost for good (a full outage heals)
  coreKeyRefreshMs             (600000) core key refresh inside a view; 0 = on view changes only
  leafKeyRefreshMs             (86400000) each linked leaf's own key is refreshed at least this
                               often (and at every re-link)
  fullRefreshWindowMs          (1800000) after a core revocation, leaves not refreshed within
                               this are evicted
  leafRequestsPerSec           (20) per leaf: requests that cost the server (catch-up, join,
  leafRequestBurst             (40) gossip hello/reseed), a token bucket: rate and size
  catchUpBytesPerSec           (16777216) catch-up reply bytes per second over all leaves
  leafTlsThread                (true) the leaf port's TLS on a worker thread; false = main thread
  gossip.enabled               (true) the edge relay into the leaves' UDP gossip overlay
  gossip.host                  (the leaf listener's IP, else 127.0.0.1) the relay's UDP address
  gossip.port                  (0) its UDP port (it only sends; leaves learn it from datagrams)
  gossip.fanout                (3) leaves each rekey part and data message is handed to
  gossip.maxDatagramBytes      (8192) larger items go over TLS
  gossip.historyItems          (4096) the data history leaves pull gaps from: at most this many
  gossip.historyBytes          (16777216) entries and this many bytes
  gossip.pullBytesPerSec       (4194304) pull reply bytes per second over all leaves

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
    return await new Promise<number>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        process.off('SIGHUP', reload);
        void server.stop().then(() => resolve(0));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // The server stopped itself (a failed store write): exit non-zero so the supervisor restarts it.
      server.onFatal = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        process.off('SIGHUP', reload);
        resolve(1);
      };
    });
  },
};
