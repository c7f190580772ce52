/** Layers in isolation: each is driven through its up/down interface and its output captured. */
import test from 'ava';
import {
  Channel,
  compareRank,
  decidePrimary,
  dedupeMembers,
  FailureDetector,
  FlowControl,
  genesisPrimary,
  ReliableFifo,
  TotalOrder,
} from '../../core-group/index.js';
import type {
  BaseLayer,
  DownEvent,
  Frame,
  MemberKey,
  PrimaryRef,
  UpEvent,
  View,
} from '../../core-group/index.js';

const A = 'a#1';
const B = 'b#1';
const C = 'c#1';
const view3: View = {
  id: { epoch: 1, coord: A },
  members: [A, B, C],
  primary: true,
  lastPrimary: { step: 1, id: { epoch: 1, coord: A }, members: [A, B, C] },
};

function harness<L extends BaseLayer>(
  make: (ctx: { self: MemberKey; now: () => number }) => L,
  self: MemberKey,
) {
  const clock = { t: 0 };
  const ups: UpEvent[] = [];
  const downs: DownEvent[] = [];
  const layer = make({ self, now: () => clock.t });
  layer.connect(
    (e) => ups.push(e),
    (e) => downs.push(e),
  );
  const sent = (t?: Frame['t']): { to: MemberKey; frame: Frame }[] =>
    downs.flatMap((d) =>
      d.type === 'send' && (t === undefined || d.frame.t === t) ? [{ to: d.to, frame: d.frame }] : [],
    );
  return { layer, clock, ups, downs, sent };
}

const fifoData = (from: MemberKey, seq: number, ch: Channel = Channel.Fifo): Frame => ({
  t: 'data',
  from,
  view: view3.id,
  seq,
  ch,
  payload: Uint8Array.of(seq),
});

test('fd: a silent member is suspected once; a chatty one never; the timeout stays within bounds', (t) => {
  const h = harness(
    (ctx) => new FailureDetector(ctx, { heartbeatMs: 50, minTimeoutMs: 200, maxTimeoutMs: 1000 }),
    A,
  );
  h.layer.down({ type: 'view', view: view3 });
  for (h.clock.t = 0; h.clock.t <= 2000; h.clock.t += 10) {
    h.layer.up({ type: 'frame', frame: { t: 'hb', from: B, to: A, view: view3.id } });
    h.layer.tick(h.clock.t);
  }
  const suspects = h.ups.filter((e) => e.type === 'suspect');
  t.deepEqual(suspects, [{ type: 'suspect', member: C }]);
  t.true(h.sent('hb').some((s) => s.to === B) && h.sent('hb').some((s) => s.to === C));
  const to = h.layer.timeoutOf(B)!;
  t.true(to >= 200 && to <= 1000);
});

test('fd: a newer incarnation of a member proves the old one gone; hellos are no sign of life', (t) => {
  const h = harness(
    (ctx) => new FailureDetector(ctx, { heartbeatMs: 50, minTimeoutMs: 200, maxTimeoutMs: 1000 }),
    A,
  );
  h.layer.down({ type: 'view', view: view3 });
  h.clock.t = 10;
  h.layer.up({ type: 'frame', frame: { t: 'hb', from: 'b#2', to: A, view: view3.id } });
  t.deepEqual(
    h.ups.filter((e) => e.type === 'suspect'),
    [{ type: 'suspect', member: B }],
  );
  for (h.clock.t = 0; h.clock.t <= 1500; h.clock.t += 10) {
    h.layer.up({
      type: 'frame',
      frame: {
        t: 'hello',
        from: C,
        view: { epoch: 9, coord: C },
        members: [C],
        primary: false,
        lpStep: 0,
        version: [],
      },
    });
    h.layer.tick(h.clock.t);
  }
  t.true(h.ups.some((e) => e.type === 'suspect' && e.member === C));
});

test('nakack: out-of-order and duplicate data is delivered once in FIFO order; gaps are NAKed', (t) => {
  const h = harness(
    (ctx) => new ReliableFifo(ctx, { windowMsgs: 8, statusMs: 50, nakMs: 20, maxNakBatch: 8 }),
    A,
  );
  h.layer.down({ type: 'view', view: view3 });
  for (const seq of [2, 3, 2, 1, 3, 5]) h.layer.up({ type: 'frame', frame: fifoData(B, seq) });
  const got = h.ups.flatMap((e) => (e.type === 'deliver' ? [e.seq] : []));
  t.deepEqual(got, [1, 2, 3]);
  h.clock.t = 100;
  h.layer.tick(100);
  const naks = h.sent('nak').map((s) => s.frame);
  t.deepEqual(
    naks.map((f) => f.t === 'nak' && [f.to, f.lo, f.hi]),
    [[B, 4, 5]],
  );
  // Past the receive window: dropped, not buffered.
  h.layer.up({ type: 'frame', frame: fifoData(B, 100) });
  t.false(h.ups.some((e) => e.type === 'deliver' && e.seq === 100));
});

test('nakack: the send window closes until STATUS shows the messages stable, then memory is freed', (t) => {
  const h = harness(
    (ctx) => new ReliableFifo(ctx, { windowMsgs: 4, statusMs: 50, nakMs: 20, maxNakBatch: 8 }),
    A,
  );
  h.layer.down({ type: 'view', view: view3 });
  for (let i = 0; i < 4; i++)
    h.layer.down({ type: 'multicast', ch: Channel.Fifo, payload: Uint8Array.of(i) });
  const windows = h.ups.flatMap((e) => (e.type === 'sendWindow' ? [e.free] : []));
  t.deepEqual(windows, [4, 3, 2, 1, 0]);
  t.throws(() => h.layer.down({ type: 'multicast', ch: Channel.Fifo, payload: Uint8Array.of(9) }));
  t.is(h.layer.retained, 4);
  h.layer.up({ type: 'frame', frame: { t: 'status', from: B, view: view3.id, contig: [4, 0, 0] } });
  t.is(h.layer.retained, 4, 'not stable until every member has it');
  h.layer.up({ type: 'frame', frame: { t: 'status', from: C, view: view3.id, contig: [3, 0, 0] } });
  t.is(h.layer.retained, 1);
  t.is(h.ups.at(-1)?.type === 'sendWindow' && (h.ups.at(-1) as { free: number }).free, 3);
});

// Alone in a view nobody sends STATUS: stability cannot wait for reports that never come, or the
// window closes for good after windowMsgs messages and a one-server core orders nothing more
// (no batch cut, no lease expiry: a silent leaf kept its keys).
test('nakack: alone in the view, own messages are stable once delivered and the window stays open', (t) => {
  const h = harness(
    (ctx) => new ReliableFifo(ctx, { windowMsgs: 4, statusMs: 50, nakMs: 20, maxNakBatch: 8 }),
    A,
  );
  const alone: View = { ...view3, members: [A], lastPrimary: { ...view3.lastPrimary, members: [A] } };
  h.layer.down({ type: 'view', view: alone });
  for (let i = 0; i < 40; i++) {
    const ch = i % 2 === 0 ? Channel.Ordered : Channel.Order; // ORDER records fill the window too
    t.notThrows(() => h.layer.down({ type: 'multicast', ch, payload: Uint8Array.of(i) }), `message ${i}`);
    h.clock.t += 10;
    h.layer.tick(h.clock.t);
  }
  t.is(h.ups.filter((e) => e.type === 'deliver').length, 40);
  t.is(h.layer.retained, 0, 'nothing is kept for members that do not exist');
  const windows = h.ups.flatMap((e) => (e.type === 'sendWindow' ? [e.free] : []));
  t.is(windows.at(-1), 4);
  t.false(
    h.sent().some((s) => s.frame.t === 'status'),
    'no STATUS to nobody',
  );
});

test('nakack: freeze reports held messages; store + deliverCut complete exactly the cut', (t) => {
  const h = harness(
    (ctx) => new ReliableFifo(ctx, { windowMsgs: 8, statusMs: 50, nakMs: 20, maxNakBatch: 8 }),
    A,
  );
  h.layer.down({ type: 'view', view: view3 });
  h.layer.up({ type: 'frame', frame: fifoData(B, 1) });
  h.layer.down({ type: 'freeze' });
  const report = h.ups.find((e) => e.type === 'flushReport');
  t.deepEqual(report?.type === 'flushReport' && report.contig, [0, 1, 0]);
  h.layer.up({ type: 'frame', frame: fifoData(B, 2) }); // received while frozen: held, not delivered
  t.is(h.ups.filter((e) => e.type === 'deliver').length, 1);
  h.layer.down({ type: 'store', msgs: [{ sender: C, seq: 1, ch: Channel.Fifo, payload: Uint8Array.of(1) }] });
  h.layer.down({ type: 'deliverCut', cut: [0, 1, 1], resendUnordered: true });
  const delivered = h.ups.flatMap((e) => (e.type === 'deliver' ? [`${e.sender}:${e.seq}`] : []));
  t.deepEqual(delivered, [`${B}:1`, `${C}:1`], 'B:2 is beyond the cut and never delivered');
  t.is(h.ups.at(-1)?.type, 'viewEnd');
  t.throws(() => h.layer.down({ type: 'deliverCut', cut: [0, 1, 5], resendUnordered: true }));
});

test('total: sequencer order is followed; at a flush only the agreed ORDER prefix is delivered', (t) => {
  const h = harness((ctx) => new TotalOrder(ctx), B);
  h.layer.down({ type: 'view', view: view3 });
  const orderPayload = (entries: [number, number][]): Uint8Array => {
    const bytes = [entries.length];
    for (const [s, q] of entries) bytes.push(s, q);
    return Uint8Array.from(bytes);
  };
  const deliver = (
    sender: MemberKey,
    seq: number,
    ch: Channel,
    payload: Uint8Array = Uint8Array.of(seq),
  ): void => h.layer.up({ type: 'deliver', sender, seq, ch, payload });
  deliver(C, 1, Channel.Ordered);
  deliver(B, 1, Channel.Ordered);
  deliver(
    A,
    1,
    Channel.Order,
    orderPayload([
      [1, 1],
      [2, 1],
    ]),
  );
  deliver(B, 2, Channel.Ordered);
  deliver(C, 2, Channel.Ordered);
  deliver(A, 2, Channel.Order, orderPayload([[2, 2]])); // C:2 ordered; B:2 never
  deliver(C, 1, Channel.Fifo);
  const order = (): string[] =>
    h.ups.flatMap((e) => (e.type === 'deliver' && e.ch === Channel.Ordered ? [`${e.sender}:${e.seq}`] : []));
  t.deepEqual(order(), [`${B}:1`, `${C}:1`, `${C}:2`]);
  t.true(h.ups.some((e) => e.type === 'deliver' && e.ch === Channel.Fifo));
  h.layer.down({ type: 'freeze' });
  h.layer.up({ type: 'viewEnd', view: view3.id, resendUnordered: true });
  t.deepEqual(order(), [`${B}:1`, `${C}:1`, `${C}:2`], 'unordered B:2 is not delivered at the flush');
  // B's own unordered message goes to the next view's sequencer first.
  h.layer.down({ type: 'view', view: { ...view3, id: { epoch: 2, coord: A } } });
  const resent = h.downs.filter((d) => d.type === 'multicast');
  t.deepEqual(
    resent.map((d) => d.type === 'multicast' && [d.ch, d.payload[0]]),
    [[Channel.Ordered, 2]],
  );
});

// A flush whose cut holds an ORDER record but not its message skips it: what follows is a branch
// of the view's total order, and says so (a state version must not count it as a prefix).
test('total: at a flush, deliveries after a skipped ORDER record are flagged afterGap', (t) => {
  const h = harness((ctx) => new TotalOrder(ctx), B);
  h.layer.down({ type: 'view', view: view3 });
  const deliver = (
    sender: MemberKey,
    seq: number,
    ch: Channel,
    payload: Uint8Array = Uint8Array.of(seq),
  ): void => h.layer.up({ type: 'deliver', sender, seq, ch, payload });
  deliver(B, 1, Channel.Ordered);
  // The sequencer A orders C:1 (which never reaches B), then B:1.
  deliver(A, 1, Channel.Order, Uint8Array.of(2, 2, 1, 1, 1));
  t.deepEqual(
    h.ups.filter((e) => e.type === 'deliver'),
    [],
    'B:1 waits behind C:1',
  );
  h.layer.down({ type: 'freeze' });
  h.layer.up({ type: 'viewEnd', view: view3.id, resendUnordered: false });
  t.deepEqual(
    h.ups.flatMap((e) => (e.type === 'deliver' ? [[`${e.sender}:${e.seq}`, e.afterGap === true]] : [])),
    [[`${B}:1`, true]],
  );
});

test('flow: bounded queue, held while blocked, drained by the send window', (t) => {
  const h = harness((ctx) => new FlowControl(ctx, { maxQueued: 3 }), A);
  t.true(h.layer.offer(Channel.Fifo, Uint8Array.of(1)));
  t.true(h.layer.offer(Channel.Fifo, Uint8Array.of(2)));
  t.true(h.layer.offer(Channel.Fifo, Uint8Array.of(3)));
  t.false(h.layer.offer(Channel.Fifo, Uint8Array.of(4)), 'backpressure');
  h.layer.up({ type: 'sendWindow', free: 2 });
  t.is(h.downs.length, 0, 'blocked before the first view');
  h.layer.up({ type: 'view', view: view3, self: A });
  t.is(h.downs.length, 2);
  h.layer.up({ type: 'block' });
  h.layer.up({ type: 'sendWindow', free: 5 });
  t.is(h.downs.length, 2, 'blocked during a flush');
  h.layer.up({ type: 'view', view: view3, self: A });
  t.is(h.downs.length, 3);
  t.is(h.layer.queued, 0);
});

test('gms decisions: dynamic-voting primary with attempts; merge rank; member de-duplication', (t) => {
  const g = genesisPrimary([A, B, C]);
  const id = { epoch: 5, coord: A };
  const plain = { lastPrimary: g, attempts: [] };
  const by = (from: MemberKey, k: { lastPrimary: PrimaryRef; attempts: PrimaryRef[] }) => ({ from, ...k });
  t.true(decidePrimary(id, [A, B], [by(A, plain), by(B, plain)]).primary);
  t.is(decidePrimary(id, [A, B], [by(A, plain)]).lastPrimary.step, 1);
  t.false(decidePrimary(id, [A], [by(A, plain)]).primary);
  t.true(
    decidePrimary(id, ['a#2', 'b#2'], [by('a#2', plain), by('b#2', plain)]).primary,
    'new incarnations speak for the founders by name',
  );
  // An attempt {A, C} at step 1 that B never saw: {A, B} must hold a majority of it too.
  const attempt = { step: 1, id: { epoch: 3, coord: C }, members: [A, C] };
  const withAttempt = { lastPrimary: g, attempts: [attempt] };
  t.false(decidePrimary(id, [B, 'd#1'], [by(B, plain), by('d#1', plain)]).primary);
  const d = decidePrimary(id, [A, B], [by(A, withAttempt), by(B, plain)]);
  t.false(d.primary, '{A,B} holds only half of the attempt {A,C}');
  t.deepEqual(d.attempts, [attempt]);
  const d2 = decidePrimary(id, [A, B, C], [by(A, withAttempt), by(B, plain), by(C, plain)]);
  t.true(d2.primary);
  t.is(d2.lastPrimary.step, 2, 'the step after the attempt');
  t.true(
    compareRank(
      { version: [], lpStep: 2, primary: false, size: 1, coord: C },
      { version: [], lpStep: 1, primary: true, size: 5, coord: A },
    ) > 0,
  );
  t.true(
    compareRank(
      { version: [], lpStep: 1, primary: true, size: 1, coord: C },
      { version: [], lpStep: 1, primary: false, size: 5, coord: A },
    ) > 0,
  );
  t.true(
    compareRank(
      { version: [], lpStep: 1, primary: false, size: 2, coord: A },
      { version: [], lpStep: 1, primary: false, size: 2, coord: B },
    ) > 0,
  );
  // The newest committed state leads a merge, whatever the rest of the rank says.
  t.true(
    compareRank(
      { version: [0, 3, 1], lpStep: 2, primary: false, size: 1, coord: C },
      { version: [0, 3, 0], lpStep: 4, primary: true, size: 5, coord: A },
    ) > 0,
  );
  t.deepEqual(dedupeMembers(A, [B, 'a#1', 'b#3', C, B]), [A, 'b#3', C]);
  // Majorities count names: restarted incarnations speak for their names (their knowledge of the
  // primary sequence is durable), so a group that all restarted is primary again by itself.
  const lp3 = { step: 7, id: { epoch: 4, coord: A }, members: [A, B, C] };
  const known3 = { lastPrimary: lp3, attempts: [] };
  const again = decidePrimary(id, ['a#9', 'b#5'], [by('a#9', known3), by('b#5', known3)]);
  t.true(again.primary);
  t.is(again.lastPrimary.step, 8);
  t.false(
    decidePrimary(id, ['a#9', 'a#10'], [by('a#9', known3), by('a#10', known3)]).primary,
    'one name is one vote',
  );
  // A name that does not know the last primary lost its memory (a wiped data dir): no witness.
  t.false(
    decidePrimary(id, ['a#9', 'b#5'], [by('a#9', known3), by('b#5', plain)]).primary,
    'b#5 reports only the genesis: it cannot vouch for step 7',
  );
  // ... but a member that holds the last primary as an attempt (crashed before installing it) can.
  const asAttempt = { lastPrimary: g, attempts: [lp3] };
  t.true(decidePrimary(id, ['a#9', 'b#5'], [by('a#9', known3), by('b#5', asAttempt)]).primary);
});
