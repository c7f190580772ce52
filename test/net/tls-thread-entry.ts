/**
 * Worker entry for test/net/tls-thread.test.ts: a TlsTransport identifying peers by SAN URI,
 * served through a LinkThreadHost. Control payloads: 'crash' throws on the thread (an uncaught
 * error kills it); anything else is echoed back as an event.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { LinkThreadHost, TlsTransport } from '../../net/index.js';
import { identifyByUri } from '../fixtures/pki.js';

export interface EntryData {
  readonly local: string;
  readonly group: string;
  readonly tls: { cert: string; key: string; ca: string };
  readonly maxMessageBytes: number;
  readonly maxUnackedBytes?: number;
}

const d = workerData as EntryData;
const host = new LinkThreadHost(
  parentPort!,
  {
    infoOf: (peer) => ({ peer, threadId }),
    control: (payload) => {
      if (payload === 'crash')
        setImmediate(() => {
          throw new Error('boom on the TLS thread');
        });
      else host.emit({ echo: payload });
    },
  },
  d.maxUnackedBytes !== undefined ? { maxUnackedBytes: d.maxUnackedBytes } : {},
);
host.serve(
  new TlsTransport({
    local: d.local,
    tls: d.tls,
    identify: (cert) => identifyByUri(cert, d.group),
    maxMessageBytes: d.maxMessageBytes,
    handshakeTimeoutMs: 3000,
    onHandshakeFailed: (remote, reason, detail) => host.handshakeFailed(remote, reason, detail),
  }),
);
