/**
 * What a server settles without any process: the incarnation record (a member key is never
 * reused, also across an in-memory rejoin followed by a crash) and the command outbox (the
 * commands of one turn leave packed, in order, and survive the stack's refusal).
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CommandOutbox,
  FileStorage,
  INCARNATIONS_PER_GENERATION,
  IncarnationRecord,
  ServerStartError,
  decodeCoreMessage,
} from '../../server/index.js';
import { decodeCommand, type LeafCommand } from '../../leaf-plane/index.js';

const files = new FileStorage();

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'kg-boot-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const onFile = (dir: string): number => Number(readFileSync(join(dir, 'incarnation'), 'utf8'));

test('boots take increasing incarnations, the first one of a generation first', (t) =>
  withDir((dir) => {
    const g = 3 * INCARNATIONS_PER_GENERATION;
    t.is(IncarnationRecord.boot(files, dir, 3).current, g);
    t.is(onFile(dir), g + 1); // reserved for an in-memory rejoin
    t.is(IncarnationRecord.boot(files, dir, 3).current, g + 2);
    t.is(IncarnationRecord.boot(files, dir, 4).current, 4 * INCARNATIONS_PER_GENERATION);
    t.throws(() => IncarnationRecord.boot(files, dir, 3), { instanceOf: ServerStartError, message: /older/ });
  }));

test('an in-memory rejoin is recorded at once: a restart after it never reuses its incarnation', (t) =>
  withDir((dir) => {
    const r = IncarnationRecord.boot(files, dir, 0);
    t.is(r.current, 0);
    t.false(r.advance(0));
    // The stack was excluded and rejoined as 1 (already reserved), then again as 2.
    t.true(r.advance(1));
    t.is(onFile(dir), 2);
    t.true(r.advance(2));
    t.is(onFile(dir), 3);
    // The process crashes now: 2 is in use, the restart must take a later one.
    t.true(IncarnationRecord.boot(files, dir, 0).current > 2);
  }));

test('an incarnation that moves back, or jumps past the reservation, is refused but recorded', (t) =>
  withDir((dir) => {
    const r = IncarnationRecord.boot(files, dir, 0);
    t.throws(() => r.advance(5), { message: /used before it was reserved/ });
    t.is(onFile(dir), 6);
    t.throws(() => r.advance(4), { message: /went back/ });
    t.is(IncarnationRecord.boot(files, dir, 0).current, 7);
  }));

test('a corrupt incarnation file stops the boot', (t) =>
  withDir((dir) => {
    writeFileSync(join(dir, 'incarnation'), 'seven\n');
    t.throws(() => IncarnationRecord.boot(files, dir, 0), {
      instanceOf: ServerStartError,
      message: /corrupt/,
    });
  }));

const admit = (i: number): LeafCommand => ({
  kind: 'admit',
  value: {
    name: `leaf-${i}`,
    serial: `${i}`.padStart(8, '0'),
    fingerprint: new Uint8Array(32).fill(i & 0xff),
    now: i,
  },
});

function harness(maxQueued: number) {
  const sent: LeafCommand[][] = [];
  const scheduled: (() => void)[] = [];
  let accept = true;
  const outbox = new CommandOutbox(maxQueued, {
    multicast: (payload) => {
      if (!accept) return false;
      const m = decodeCoreMessage(payload);
      if (m.kind !== 'commands') throw new Error(`unexpected ${m.kind}`);
      sent.push(m.value.commands.map(decodeCommand));
      return true;
    },
    schedule: (flush) => void scheduled.push(flush),
  });
  return { outbox, sent, scheduled, refuse: (v: boolean) => (accept = !v) };
}

test('the commands of one turn leave together, in order, packed under the payload bound', (t) => {
  const h = harness(10_000);
  for (let i = 0; i < 2000; i++) t.true(h.outbox.submit(admit(i)));
  t.is(h.scheduled.length, 1); // one flush per turn
  t.is(h.sent.length, 0); // nothing leaves before the turn ends
  h.scheduled[0]!();
  t.true(h.sent.length >= 2, 'more than one 64 KiB message was needed');
  t.deepEqual(
    h.sent.flat(),
    Array.from({ length: 2000 }, (_, i) => admit(i)),
  );
  t.is(h.outbox.queued, 0);
});

test('a full outbox refuses; what the stack refuses waits for the next flush', (t) => {
  const h = harness(3);
  t.true(h.outbox.submit(admit(1)));
  t.true(h.outbox.submit(admit(2)));
  t.true(h.outbox.submit(admit(3)));
  t.false(h.outbox.submit(admit(4)));
  h.refuse(true);
  h.scheduled[0]!();
  t.is(h.outbox.queued, 3);
  t.is(h.outbox.refusedByStack, 1);
  h.refuse(false);
  h.outbox.flush();
  t.deepEqual(h.sent, [[admit(1), admit(2), admit(3)]]);
  t.true(h.outbox.submit(admit(5)));
  t.is(h.scheduled.length, 2);
});
