/**
 * Real `keyglass server` processes on 127.0.0.1 for tests: the shared local-deployment kit
 * (cli/cluster: throwaway CA, configs, server child processes, leaves in this process) plus a
 * runner for one-shot `keyglass` commands.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, LocalCluster, type LocalLeaf } from '../../cli/cluster/index.js';
import {
  credentialsFromPem,
  formatIdentity,
  MutualTls,
  PeerVerifier,
  trustAnchorsFromPem,
} from '../../auth/index.js';
import { TlsTransport } from '../../net/index.js';
import { decodeLeafFrame, MAX_LEAF_FRAME_BYTES, type LeafFrame } from '../../gossip-edge/index.js';

export { BIN, GROUP, freePorts, until, type Member, type ServerProc } from '../../cli/cluster/index.js';
export type Leaf = LocalLeaf;

export class Cluster extends LocalCluster {
  constructor() {
    super('kg-server-');
  }

  override init(): Promise<void> {
    return super.init('Server Test CA');
  }
}

/** Runs `keyglass ARGS` to completion. */
export function keyglass(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A bare leaf link: frames out as raw bytes, frames in decoded (no LeafClient logic in between). */
export interface RawLeafLink {
  /** False when the link is down or its send queue is full. */
  send(frame: Uint8Array): boolean;
  readonly up: boolean;
  close(): Promise<void>;
}

/**
 * A bare authenticated link to a server's leaf port under the certificate `name` that `cluster`
 * issued (`<dir>/<name>.pem` and `.key`): for tests that must send what a LeafClient never would.
 */
export async function rawLeafLink(
  cluster: LocalCluster,
  name: string,
  port: number,
  onFrame: (f: LeafFrame) => void = () => {},
): Promise<RawLeafLink> {
  const creds = credentialsFromPem(
    readFileSync(join(cluster.dir, `${name}.pem`), 'utf8'),
    readFileSync(join(cluster.dir, `${name}.key`), 'utf8'),
  );
  const mtls = new MutualTls(creds, new PeerVerifier({ anchors: trustAnchorsFromPem(cluster.caPem) }));
  const transport = new TlsTransport({
    local: formatIdentity(creds.identity!),
    tls: mtls.contextOptions(),
    identify: mtls.transportIdentify({ roles: ['core'], peerSide: 'server' }),
    maxMessageBytes: MAX_LEAF_FRAME_BYTES,
  });
  let up = true;
  transport.setHandler({
    onMessage: (_from, data) => onFrame(decodeLeafFrame(data)),
    onPeerDown: () => {
      up = false;
    },
  });
  const peer = await transport.connect('127.0.0.1', port);
  return {
    send: (frame) => up && transport.send(peer, frame),
    get up() {
      return up;
    },
    close: () => transport.close(),
  };
}
