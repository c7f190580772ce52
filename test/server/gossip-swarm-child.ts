/**
 * A child process holding many LeafClients (each with its own UDP gossip port) for the gossip
 * swarm test. Driven over the IPC channel: it connects the leaves listed in the JSON file named
 * by argv[2], reports `ready`, then answers `report` and `publish` requests. It exits when the
 * parent goes away (IPC disconnect) or on `exit`.
 */
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { LeafClient } from '../../leaf-sdk/index.js';
import type { SwarmChildConfig, SwarmLeafReport, SwarmRequest, SwarmReply } from './gossip-swarm.js';

interface Held {
  readonly name: string;
  readonly client: LeafClient;
  readonly texts: string[];
  readonly epochs: number[];
  keyId: string | undefined;
  evicted: string | undefined;
  evictedAt: number | undefined;
  /** Messages / keys that arrived after the eviction (must stay 0). */
  afterEviction: number;
  errors: number;
}

const MAX_TEXTS = 1000;
// 200 leaves are the heaviest load of the test run: yield the CPU to the servers and to the
// other real-process tests ava runs alongside (a lower priority; ignored where not permitted).
try {
  setPriority(10);
} catch {
  // not permitted here: run at the normal priority
}
const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SwarmChildConfig;
const held: Held[] = [];
const dec = new TextDecoder();

function reply(r: SwarmReply): void {
  process.send?.(r);
}

async function connectOne(i: number): Promise<void> {
  const leaf = cfg.leaves[i]!;
  const client = new LeafClient({
    backoffBaseMs: 50,
    backoffMaxMs: 500,
    welcomeTimeoutMs: 15_000,
    maxAttempts: 40,
    // 200 leaves on 2 shared cores: a 200 ms round halves the idle anti-entropy traffic.
    gossip: { roundMs: 200 },
  });
  const h: Held = {
    name: leaf.name,
    client,
    texts: [],
    epochs: [],
    keyId: undefined,
    evicted: undefined,
    evictedAt: undefined,
    afterEviction: 0,
    errors: 0,
  };
  client.on('key', (k) => {
    if (h.evicted !== undefined) h.afterEviction++;
    h.keyId = k.keyId;
    if (h.epochs.length < MAX_TEXTS) h.epochs.push(k.epoch);
  });
  client.on('message', (m) => {
    if (h.evicted !== undefined) h.afterEviction++;
    if (h.texts.length < MAX_TEXTS) h.texts.push(dec.decode(m.data));
  });
  client.on('evicted', (e) => {
    h.evicted = e.reason;
    h.evictedAt = client.epoch ?? h.epochs[h.epochs.length - 1];
  });
  client.on('error', () => h.errors++);
  held[i] = h;
  const servers = cfg.servers.map((_, k) => cfg.servers[(i + cfg.firstServer + k) % cfg.servers.length]!);
  await client.connect({
    servers,
    credentials: { certPem: leaf.certPem, keyPem: leaf.keyPem },
    trust: { caPem: cfg.caPem },
  });
}

function report(h: Held): SwarmLeafReport {
  const c = h.client;
  const counters = c.gossip?.counters;
  return {
    name: h.name,
    epoch: c.epoch ?? h.epochs[h.epochs.length - 1] ?? -1,
    keyId: h.keyId,
    texts: h.texts,
    evicted: h.evicted,
    evictedAt: h.evictedAt,
    afterEviction: h.afterEviction,
    gossipRekeys: c.stats.gossipRekeys,
    tlsRekeys: c.stats.tlsRekeys,
    gossipData: c.stats.gossipData,
    tlsData: c.stats.tlsData,
    duplicates: counters?.duplicates ?? 0,
    sent: counters?.totalSent() ?? 0,
    catchUps: c.stats.catchUps,
    dataPulls: c.stats.dataPulls,
    pulledData: c.stats.pulledData,
    dataDuplicates: c.stats.dataDuplicates,
    rejoins: c.stats.rejoins,
    moves: c.gossip?.stats.moves ?? 0,
    gossipRefused: c.stats.gossipRefused,
    replayedEarly: c.gossip?.stats.replayedEarly ?? 0,
  };
}

process.on('message', (msg: SwarmRequest) => {
  switch (msg.kind) {
    case 'report':
      return reply({ kind: 'report', id: msg.id, leaves: held.map(report) });
    case 'publish': {
      const h = held[msg.leaf]!;
      let ok = false;
      try {
        ok = h.client.publish(new TextEncoder().encode(msg.text));
      } catch {
        ok = false;
      }
      return reply({ kind: 'published', id: msg.id, ok });
    }
    case 'exit':
      return void Promise.all(held.map((h) => h.client.close({ leave: false }))).finally(() =>
        process.exit(0),
      );
  }
});
process.on('disconnect', () => process.exit(0));

/** A connect that failed every bounded attempt is retried with a fresh client (a loaded machine). */
async function connectRetrying(i: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectOne(i);
    } catch (e) {
      await held[i]?.client.close({ leave: false }).catch(() => {});
      if (attempt >= CONNECT_TRIES) throw e;
    }
  }
}

// Connect with bounded concurrency (joins batch up at the servers).
const CONCURRENCY = 3;
const CONNECT_TRIES = 3;
let next = 0;
try {
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cfg.leaves.length) await connectRetrying(next++);
    }),
  );
  reply({ kind: 'ready' });
} catch (e) {
  process.stderr.write(`swarm child: ${(e as Error).message}\n`);
  process.exit(1);
}
