/**
 * Helpers for attacks on a core server's leaf port: a raw leaf link that joins and waits for its
 * welcome, and the server's main-thread CPU from its /metrics.
 */
import type { LeafFrame, LeafFrameBody } from '../../gossip-edge/index.js';
import { encodeLeafFrame } from '../../gossip-edge/index.js';
import { rawLeafLink, until, type RawLeafLink, type ServerProc } from '../server/cluster.js';
import type { LocalCluster } from '../../cli/cluster/index.js';

export interface JoinedRaw {
  readonly link: RawLeafLink;
  readonly welcome: LeafFrameBody<'welcome'>;
  /** Every frame after the welcome goes here (replace it at will). */
  onFrame: (f: LeafFrame) => void;
}

/** A raw link of leaf `name` (issued by `cluster`) to `server`, joined and welcomed. */
export async function joinedRaw(cluster: LocalCluster, name: string, server: ServerProc): Promise<JoinedRaw> {
  let welcome: LeafFrameBody<'welcome'> | undefined;
  const out: JoinedRaw = {
    link: undefined as unknown as RawLeafLink,
    welcome: undefined as unknown as LeafFrameBody<'welcome'>,
    onFrame: () => {},
  };
  const link = await rawLeafLink(cluster, name, server.ports.leaf, (f) => {
    if (f.type === 'welcome' && welcome === undefined) welcome = f.body;
    else out.onFrame(f);
  });
  link.send(encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  await until(`${name} welcomed by ${server.name}`, () => welcome !== undefined, 10_000);
  return Object.assign(out, { link, welcome: welcome! });
}

/** `keyglass_thread_cpu_seconds_total{thread="main"}` of `server` now. */
export async function mainCpuSeconds(cluster: LocalCluster, server: ServerProc): Promise<number> {
  const text = await (await cluster.get(server, '/metrics')).text();
  const m = /^keyglass_thread_cpu_seconds_total\{thread="main"\} ([\d.e+-]+)$/m.exec(text);
  if (m === null) throw new Error(`${server.name}: no main-thread CPU in /metrics`);
  return Number(m[1]);
}
