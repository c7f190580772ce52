/**
 * Worker-thread entry of a key server's leaf port (see leaf-port.ts): a TlsTransport with the
 * leaf identify, served to the main thread through a LinkThreadHost. Its control messages are the
 * CRLs the main thread loads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  MutualTls,
  PeerVerifier,
  RevocationRegistry,
  credentialsFromPem,
  parseCertificate,
} from '../auth/index.js';
import { LinkThreadHost, TlsTransport } from '../net/index.js';
import { LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL } from '../keytree/index.js';
import {
  MAX_LEAF_LINKS,
  leafIdentify,
  leafLinkOptions,
  type LeafLinkInfo,
  type LeafPortControl,
  type LeafPortCrl,
  type LeafPortEvent,
  type LeafPortTls,
  type LeafPortThreadData,
} from './leaf-port.js';

async function main(port: NonNullable<typeof parentPort>, data: LeafPortThreadData): Promise<void> {
  let anchors = data.anchorsDer.map((der) => parseCertificate(der));
  const revocation = new RevocationRegistry();
  let crlVersion = 0;
  const installCrl = async (crl: LeafPortCrl): Promise<void> => {
    await revocation.load(crl.pem, anchors); // the main thread loaded this text: it verifies here too
    crlVersion = Math.max(crlVersion, crl.version);
  };
  // One load at a time, in the order the main thread loaded them (a load is asynchronous); a
  // failed one is reported (controlFailed) and does not stop the next.
  let installing = Promise.resolve();
  const installInOrder = (control: LeafPortControl): Promise<void> => {
    const done = installing.then(() => ('kind' in control ? installTls(control) : installCrl(control)));
    installing = done.catch(() => undefined);
    return done;
  };
  if (data.crl !== undefined) await installCrl(data.crl);

  const mtlsOf = (certChainPem: string, keyPem: string): MutualTls =>
    new MutualTls(
      credentialsFromPem(certChainPem, keyPem),
      new PeerVerifier({
        anchors,
        group: data.group,
        revocation,
        ...(data.policy !== undefined ? { policy: data.policy } : {}),
      }),
    );
  const mtls = mtlsOf(data.certChainPem, data.keyPem);
  // The newest accepted certificate per identity, for its link's up; the oldest entries go first
  // beyond twice the link cap (an identity whose link never came up leaves one behind).
  const accepted = new Map<string, LeafLinkInfo>();
  const remember = (id: string, info: LeafLinkInfo): void => {
    accepted.delete(id);
    accepted.set(id, info);
    if (accepted.size > 2 * MAX_LEAF_LINKS) accepted.delete(accepted.keys().next().value!);
  };
  const host = new LinkThreadHost(port, {
    // With the link's TLS exporter: the main thread derives the leaf's refreshed own keys from it.
    infoOf: (peer): LeafLinkInfo | undefined => {
      const info = accepted.get(peer);
      const exporter = transport.exportKeyingMaterial(peer, LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL);
      return info === undefined ? undefined : { ...info, ...(exporter !== undefined ? { exporter } : {}) };
    },
    control: (payload) => installInOrder(payload as LeafPortControl),
  });
  const event = (e: LeafPortEvent): void => host.emit(e);
  const identifyWith = (m: MutualTls): ReturnType<typeof leafIdentify> =>
    leafIdentify(
      m,
      (reason, detail) => event({ kind: 'refused', reason, detail }),
      (id, cert) => remember(id, { cert, crlVersion }),
    );
  // A reload: the main thread checked these already; links made from now on use them.
  const installTls = (tls: LeafPortTls): void => {
    anchors = tls.anchorsDer.map((der) => parseCertificate(der));
    const m = mtlsOf(tls.certChainPem, tls.keyPem);
    transport.setTls(m.contextOptions(), identifyWith(m));
  };
  const transport = new TlsTransport({
    local: data.local,
    tls: mtls.contextOptions(),
    identify: identifyWith(mtls),
    ...leafLinkOptions(data.leaseMs, data.handshakeTimeoutMs),
    onHandshakeFailed: (remote, reason, detail) => host.handshakeFailed(remote, reason, detail),
  });
  host.serve(transport);
}

if (parentPort === null) throw new Error('leaf-port-thread: not started as a worker thread');
await main(parentPort, workerData as LeafPortThreadData);
