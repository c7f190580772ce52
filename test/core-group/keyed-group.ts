/** A small keyed group over the simulator (no faults unless the test injects them). */
import { GroupMember, memberKey } from '../../core-group/index.js';
import type { CoreKeyConfig, CoreKeyInfo, Delivery } from '../../core-group/index.js';
import { loadSuite } from '../../crypto/index.js';
import { Simulator } from '../../net/sim/index.js';

export const suite = await loadSuite();

export interface Node {
  member: GroupMember;
  keys: CoreKeyInfo[];
  events: string[];
  delivered: Delivery[];
}

export interface Wire {
  readonly from: number;
  readonly to: number;
  readonly bytes: Uint8Array;
}

export function group(
  n: number,
  refreshMs = 0,
  seed = 5,
): { sim: Simulator<Uint8Array>; nodes: Node[]; wire: Wire[] } {
  const sim = new Simulator<Uint8Array>({ seed, link: { latencyMs: 1 }, traceRing: 0 });
  const wire: Wire[] = [];
  const names = Array.from({ length: n }, (_, i) => `k${i}`);
  const seeds = names.map(() => suite.randomBytes(32));
  const pub = new Map(names.map((x, i) => [x, suite.ed25519PublicKey(seeds[i]!)]));
  const founders = names.map((x) => memberKey(x, 1));
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    sim.addNode((env) => {
      const node: Node = { keys: [], events: [], delivered: [] } as unknown as Node;
      const keys: CoreKeyConfig = {
        suite,
        identitySeed: seeds[i]!,
        verifyKeyOf: (x) => pub.get(x),
        random: () => env.rng.next(),
        refreshMs,
      };
      node.member = new GroupMember(
        { name: names[i]!, incarnation: 1 + env.incarnation, founders, peers: names, keys },
        {
          now: () => env.now(),
          send: (to, b) => {
            if (wire.length < 100_000) wire.push({ from: i, to: Number(to.slice(1)), bytes: b });
            env.send(Number(to.slice(1)), b);
          },
        },
        {
          view: () => node.events.push('view'),
          deliver: (d) => node.delivered.push(d),
          unicast: () => {},
          block: () => node.events.push('block'),
          unblock: () => node.events.push('unblock'),
          key: (k) => {
            node.keys.push(k);
            node.events.push('key');
          },
          getState: () => new Uint8Array(0),
          setState: () => {},
        },
      );
      nodes[i] = node;
      node.member.start();
      const tick = (): void => {
        node.member.tick();
        env.setTimer(node.member.tickMs, tick);
      };
      env.setTimer(0, tick);
      return { onMessage: (_f, m) => node.member.receive(m) };
    });
  }
  return { sim, nodes, wire };
}
