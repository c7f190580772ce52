/** The checkers must catch what they claim to: each property is broken once on a tiny hand-made log. */
import test from 'ava';
import type { Property } from '../../sim/core/checkers.js';
import { checkRun } from '../../sim/core/checkers.js';
import type { ChannelName, DeliverRec, MemberLog, RunLog, ViewRec } from '../../sim/core/log.js';
import { newMemberLog } from '../../sim/core/log.js';
import { KeyKnowledge } from '../../sim/core/secrecy.js';
import { CoreCluster } from '../../sim/core-tree-driver.js';
import { loadSuite } from '../../crypto/index.js';

const A = 'a#1';
const B = 'b#1';

function view(epoch: number, members: string[], extra: Partial<ViewRec> = {}): ViewRec {
  return {
    t: 0,
    epoch,
    coord: A,
    id: `${epoch}@${A}`,
    members,
    primary: true,
    step: epoch,
    state: 's',
    ...extra,
  };
}

function deliver(viewIdx: number, origin: string, channel: ChannelName, counter: number): DeliverRec {
  const msgId = `${origin}|${channel}|${counter}`;
  return {
    t: 0,
    viewIdx,
    sender: origin,
    channel,
    msgId,
    stackId: `${msgId}@${viewIdx}`,
    origin,
    counter,
    hash: 1,
  };
}

/** Two members, both in views 1 and 2, each sending two ordered messages in view 1 — all consistent. */
function goodLog(): { log: RunLog; a: MemberLog; b: MemberLog; alive: string[] } {
  const a = newMemberLog(A, 0);
  const b = newMemberLog(B, 1);
  for (const m of [a, b]) {
    m.views.push(view(1, [A, B]), view(2, [A, B]));
    for (const c of [1, 2]) m.sent.set(`${m.key}|ordered|${c}`, { channel: 'ordered', hash: 1 });
  }
  for (const m of [a, b]) {
    m.delivered.push(
      deliver(0, A, 'ordered', 1),
      deliver(0, B, 'ordered', 1),
      deliver(0, A, 'ordered', 2),
      deliver(0, B, 'ordered', 2),
    );
  }
  const alive = [A, B];
  const log: RunLog = {
    members: new Map([
      [A, a],
      [B, b],
    ]),
    aliveAtEnd: alive,
    quietAtMs: 0,
    endMs: 100,
    livenessBoundMs: 50,
    keyHolders: new Map(),
  };
  return { log, a, b, alive };
}

const props = (log: RunLog): Property[] => [...new Set(checkRun(log).map((v) => v.property))];

test('a consistent log has no violations', (t) => {
  t.deepEqual(checkRun(goodLog().log), []);
});

test('each broken property is reported', (t) => {
  const cases: [Property, (g: ReturnType<typeof goodLog>) => void][] = [
    ['view-agreement', (g) => (g.b.views[1] = view(2, [B]))],
    ['self-inclusion', (g) => (g.b.views[0] = view(1, [A]))],
    ['view-order', (g) => g.b.views.reverse()],
    ['state-transfer', (g) => (g.b.views[1] = view(2, [A, B], { state: 'other' }))],
    ['primary-uniqueness', (g) => (g.b.views[1] = { ...view(2, [A, B]), coord: B, id: `2@${B}` })],
    ['virtual-synchrony', (g) => g.b.delivered.pop()],
    ['total-order', (g) => g.b.delivered.splice(0, 2, g.b.delivered[1]!, g.b.delivered[0]!)],
    ['fifo', (g) => g.b.delivered.splice(2, 0, g.b.delivered.splice(0, 1)[0]!)],
    ['no-duplication', (g) => g.b.delivered.push(deliver(1, A, 'ordered', 1))],
    ['no-invention', (g) => g.b.delivered.push(deliver(1, A, 'ordered', 9))],
    ['liveness', (g) => g.alive.push('c#1')],
    ['liveness', (g) => (g.b.views[1] = view(2, [A, B], { t: 99 }))],
    ['unicast', (g) => g.b.unicastRecv.push({ from: A, counter: 1, msgId: `${A}|fifo|1`, hash: 5 })],
  ];
  for (const [prop, breakIt] of cases) {
    const g = goodLog();
    breakIt(g);
    t.true(props(g.log).includes(prop), `${prop} not reported: ${JSON.stringify(checkRun(g.log))}`);
  }
});

/** goodLog with keys on: both members commit key k1 in view 1 and k2 (then refresh k3) in view 2. */
function keyedLog(): ReturnType<typeof goodLog> {
  const g = goodLog();
  const log: RunLog = { ...g.log, keysOn: true };
  for (const m of [g.a, g.b]) {
    m.keys.push(
      { t: 0, viewIdx: 0, epoch: 1, keyId: 'k1', secret: 's1', refresh: false },
      { t: 0, viewIdx: 1, epoch: 2, keyId: 'k2', secret: 's2', refresh: false },
      { t: 0, viewIdx: 1, epoch: 3, keyId: 'k3', secret: 's3', refresh: true },
    );
  }
  return { ...g, log };
}

test('the key checkers accept a consistent keyed log and catch each broken key property', (t) => {
  t.deepEqual(checkRun(keyedLog().log), []);
  const cases: [Property, (g: ReturnType<typeof goodLog>) => void][] = [
    ['key-agreement', (g) => (g.b.keys[1] = { ...g.b.keys[1]!, secret: 'other' })],
    ['key-agreement', (g) => (g.b.keys[2] = { ...g.b.keys[2]!, epoch: 2 })],
    ['key-freshness', (g) => (g.b.keys[1] = { ...g.b.keys[1]!, secret: 's1' })],
    ['key-liveness', (g) => g.b.keys.splice(1, 2)],
    ['key-liveness', (g) => (g.b.keys[1] = { ...g.b.keys[1]!, t: 99 })],
  ];
  for (const [prop, breakIt] of cases) {
    const g = keyedLog();
    breakIt(g);
    t.true(props(g.log).includes(prop), `${prop} not reported: ${JSON.stringify(checkRun(g.log))}`);
  }
});

test("the secrecy checker finds a core key derivable from an outsider's keys, and only then", async (t) => {
  const suite = await loadSuite();
  const c = new CoreCluster(suite);
  c.addNode('a');
  c.addNode('b');
  t.true(c.viewChange(['a', 'b']).installed);
  const pkAB = c.node('a').pairwise.current('b')!;
  const check = (outsiderHolds: boolean): Property[] => {
    const k = new KeyKnowledge(suite);
    for (const w of c.wraps) k.wrap(w.session, w.wrap, ['a', 'b']);
    k.held('a', c.state('a'), [pkAB]);
    k.held('b', c.state('b'), [c.node('b').pairwise.current('a')!]);
    k.held('x', undefined, outsiderHolds ? [pkAB] : []);
    k.commit(c.state('a').groupKey, 'v1', ['a', 'b']);
    const out: Property[] = [];
    k.check((p) => out.push(p));
    return out;
  };
  t.deepEqual(check(false), []);
  // The root was wrapped under the a–b pairwise key: whoever holds that key derives the core key.
  t.deepEqual(check(true), ['key-secrecy']);
});
