/** The checkers must catch what they claim to: each property is broken once on a tiny hand-made log. */
import test from 'ava';
import type { Property } from '../sim/core/checkers.js';
import { checkRun } from '../sim/core/checkers.js';
import type { ChannelName, DeliverRec, MemberLog, RunLog, ViewRec } from '../sim/core/log.js';
import { newMemberLog } from '../sim/core/log.js';

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
