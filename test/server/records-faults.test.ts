/**
 * The primary record and the incarnation record on the simulator's faulty storage
 * (sim/memory-storage.ts), beside a leaf store in the same data dir: what they write survives a
 * crash (both are written whole with Storage.replace, durable when it returns, so no tear or loss
 * applies to them), a failed write leaves the previous record, and a leaf store that comes back
 * older than the record is refused at start — where today's code detects a rollback. A rollback
 * the record cannot see (the leaf store's log alone, to a point after the record's base) yields
 * a lower state version, never a higher one. (A record rolled back past a recorded GAP would rank
 * higher than the truth, and nothing detects that.)
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { LeafStateMachine, LeafStore, StorageError, type LeafCommand } from '../../leaf-plane/index.js';
import {
  INCARNATIONS_PER_GENERATION,
  IncarnationRecord,
  PrimaryRecord,
  ServerStartError,
  type Logger,
} from '../../server/index.js';
import { MemoryStorage } from '../../sim/memory-storage.js';

const DATA = 'data';
const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

function openStore(suite: CipherSuite, mem: MemoryStorage) {
  const machine = new LeafStateMachine({
    suite,
    group: new TextEncoder().encode('g'),
    secret: new Uint8Array(32),
  });
  machine.setPrimary(true);
  const store = LeafStore.open(mem, `${DATA}/leaf-state`, machine, { suite });
  return { machine, store };
}

const cut = (epoch: number): LeafCommand => ({ kind: 'cutBatch', value: { epoch, now: epoch } });

/** Lexicographic order of state versions, as the stack's merge ranks them. */
function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

test('the record survives every crash fate; a failed write leaves the previous record', async (t) => {
  const mem = new MemoryStorage({ seed: 11 });
  mem.ensureDir(DATA, 0o700);
  const r = PrimaryRecord.open(mem, DATA, 1, 10, quiet);
  r.primaryInstalled(4, 12);
  for (const unsynced of ['lose', 'tear', 'tear-zeros', 'keep'] as const) {
    t.deepEqual(mem.crash({ unsynced }), [], 'nothing of the record waits for a sync');
    t.deepEqual(PrimaryRecord.open(mem, DATA, 1, 15, quiet).stateVersion(15), [1, 4, 3, 0], unsynced);
  }
  mem.failNext('replace');
  const again = PrimaryRecord.open(mem, DATA, 1, 15, quiet);
  t.throws(() => again.primaryInstalled(5, 15), { instanceOf: StorageError });
  mem.crash();
  t.deepEqual(PrimaryRecord.open(mem, DATA, 1, 15, quiet).stateVersion(15), [1, 4, 3, 0]);
});

test('a leaf store rolled back behind the primary record is refused at start; a rollback after its base lowers the version', async (t) => {
  const suite = await loadSuite();
  const mem = new MemoryStorage({ seed: 12 });
  const { store } = openStore(suite, mem);
  const record = PrimaryRecord.open(mem, DATA, 1, store.index, quiet);
  for (let e = 1; e <= 3; e++) store.commit([cut(e)]);
  record.primaryInstalled(2, store.index); // the view of step 2 starts at command 3
  for (let e = 4; e <= 5; e++) store.commit([cut(e)]);
  const truth = record.stateVersion(store.index);
  t.deepEqual(truth, [1, 2, 2, 0]);
  store.close();

  // The log comes back one synced image older (command 4): after the base, so not refused; the
  // version says the state is older than it was.
  const partial = new MemoryStorage({ seed: 12 });
  {
    const s = openStore(suite, partial).store;
    const rec = PrimaryRecord.open(partial, DATA, 1, s.index, quiet);
    for (let e = 1; e <= 3; e++) s.commit([cut(e)]);
    rec.primaryInstalled(2, s.index);
    for (let e = 4; e <= 5; e++) s.commit([cut(e)]);
    s.close();
  }
  partial.crash({ rollback: [{ prefix: `${DATA}/leaf-state/log`, depth: 1 }] });
  const older = openStore(suite, partial).store;
  t.is(older.index, 4);
  const v = PrimaryRecord.open(partial, DATA, 1, older.index, quiet).stateVersion(older.index);
  t.deepEqual(v, [1, 2, 1, 0]);
  t.true(compare(v, truth) < 0, 'an older state ranks lower: the merge prefers a replica that has more');

  // The log comes back three images older (command 2): before the record's base (3): refused.
  mem.crash({ rollback: [{ prefix: `${DATA}/leaf-state/log`, depth: 3 }] });
  const behind = openStore(suite, mem).store;
  t.is(behind.index, 2);
  t.throws(() => PrimaryRecord.open(mem, DATA, 1, behind.index, quiet), {
    instanceOf: ServerStartError,
    message: /records a state after command 3, the leaf store ends at 2/,
  });
});

test('a primary record rolled back past a primary installation ranks lower than the truth (its older step)', async (t) => {
  const suite = await loadSuite();
  const mem = new MemoryStorage({ seed: 13 });
  const { store } = openStore(suite, mem);
  const record = PrimaryRecord.open(mem, DATA, 1, store.index, quiet);
  store.commit([cut(1)]);
  record.primaryInstalled(1, store.index);
  for (let e = 2; e <= 4; e++) store.commit([cut(e)]);
  record.primaryInstalled(2, store.index);
  store.commit([cut(5)]);
  const truth = record.stateVersion(store.index);
  store.close();
  mem.crash({ rollback: [{ prefix: `${DATA}/primary`, depth: 1 }] });
  const s = openStore(suite, mem).store;
  const v = PrimaryRecord.open(mem, DATA, 1, s.index, quiet).stateVersion(s.index);
  t.deepEqual(truth, [1, 2, 1, 0]);
  t.deepEqual(v, [1, 1, 4, 0]);
  t.true(compare(v, truth) < 0);
});

test('incarnation record: a reservation is durable when advance returns, whatever the crash does to unsynced bytes', (t) => {
  const mem = new MemoryStorage({ seed: 14 });
  mem.ensureDir(DATA, 0o700);
  const first = 2 * INCARNATIONS_PER_GENERATION;
  const used = new Set<number>();
  let r = IncarnationRecord.boot(mem, DATA, 2);
  for (let round = 0; round < 30; round++) {
    t.false(used.has(r.current), `incarnation ${r.current} reused`);
    used.add(r.current);
    if (round % 3 === 1) {
      t.true(r.advance(r.current + 1)); // an in-memory rejoin
      used.add(r.current);
    }
    if (round % 7 === 5) {
      mem.failNext('replace');
      t.throws(() => r.advance(r.current + 1), { instanceOf: StorageError });
      used.add(r.current); // the stack may already run as it: the next boot must not reuse it
    }
    mem.crash();
    r = IncarnationRecord.boot(mem, DATA, 2);
  }
  t.true(r.current > first);
});
