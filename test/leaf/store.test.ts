/**
 * Durable leaf state: torn tails at every byte offset, corruption in the middle, wrong key,
 * compaction, and a real child process killed with SIGKILL while appending.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { LeafStateMachine, LeafStore, StoreError, type LeafCommand } from '../../leaf-plane/index.js';
import { FileStorage } from '../../server/index.js';

const files = new FileStorage();

const GROUP = new TextEncoder().encode('g');

function fresh(suite: CipherSuite): LeafStateMachine {
  const m = new LeafStateMachine({
    suite,
    group: GROUP,
    secret: new Uint8Array(32).fill(5),
    checkInvariants: true,
  });
  m.setPrimary(true);
  return m;
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kg-leafstore-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(n: number): LeafCommand[] {
  const out: LeafCommand[] = [];
  let epoch = 0;
  for (let i = 0; i < n; i++) {
    out.push({
      kind: 'admit',
      value: { name: `l${i}`, serial: `s${i}`, fingerprint: new Uint8Array(32).fill(i), now: i },
    });
    if (i % 3 === 2) out.push({ kind: 'cutBatch', value: { epoch: ++epoch, now: i } });
    if (i % 5 === 4) out.push({ kind: 'leave', value: { name: `l${i - 2}` } });
  }
  return out;
}

test('reopen restores the state; a torn last record at every byte offset is truncated', async (t) => {
  const suite = await loadSuite();
  const dir = tempDir(t);
  const cmds = script(8);
  const m = fresh(suite);
  const store = LeafStore.open(files, dir, m, { suite });
  const states: Uint8Array[] = [m.snapshot()];
  const ends: number[] = [statSync(join(dir, 'log')).size];
  for (const c of cmds) {
    store.commit([c]);
    states.push(m.snapshot());
    ends.push(statSync(join(dir, 'log')).size);
  }
  store.close();
  const full = readFileSync(join(dir, 'log'));
  const m2 = fresh(suite);
  LeafStore.open(files, dir, m2, { suite }).close();
  t.deepEqual(m2.snapshot(), states[cmds.length]);

  const lastStart = ends[ends.length - 2]!;
  for (let cut = lastStart; cut < full.length; cut++) {
    writeFileSync(join(dir, 'log'), full.subarray(0, cut));
    const mm = fresh(suite);
    const s = LeafStore.open(files, dir, mm, { suite });
    t.deepEqual(mm.snapshot(), states[cmds.length - 1], `cut at ${cut}`);
    t.is(s.opened.truncatedBytes, cut - lastStart);
    t.is(s.index, cmds.length - 1);
    s.close();
    t.is(statSync(join(dir, 'log')).size, lastStart, 'the torn tail is gone from disk');
  }
  // A zero-filled tail (some file systems extend before the data lands) is torn too.
  writeFileSync(join(dir, 'log'), Buffer.concat([full, Buffer.alloc(40)]));
  const mz = fresh(suite);
  LeafStore.open(files, dir, mz, { suite }).close();
  t.deepEqual(mz.snapshot(), states[cmds.length]);
  // …also when the zeros start inside a record that is not the last one written (two records in
  // flight, the file extended to hold both, a prefix landed): nothing intact follows, it is torn.
  // (Found by the simulator's storage: this was refused as a corrupt record.)
  const twoBack = ends[ends.length - 3]!;
  for (let cut = twoBack; cut < lastStart; cut++) {
    writeFileSync(join(dir, 'log'), Buffer.concat([full.subarray(0, cut), Buffer.alloc(full.length - cut)]));
    const mm = fresh(suite);
    const s = LeafStore.open(files, dir, mm, { suite });
    t.is(s.index, cmds.length - 2, `zeros from ${cut}`);
    t.deepEqual(mm.snapshot(), states[cmds.length - 2]);
    t.is(s.opened.truncatedBytes, full.length - twoBack);
    s.close();
  }
});

test('a corrupt record in the middle is an error naming it; a wrong key does not decrypt', async (t) => {
  const suite = await loadSuite();
  const dir = tempDir(t);
  const m = fresh(suite);
  const store = LeafStore.open(files, dir, m, { suite });
  store.commit(script(6));
  store.close();
  const log = join(dir, 'log');
  const good = readFileSync(log);
  const bad = Buffer.from(good);
  bad[60]! ^= 0x01;
  writeFileSync(log, bad);
  t.throws(() => LeafStore.open(files, dir, fresh(suite), { suite }), {
    instanceOf: StoreError,
    message: /corrupt record \d+ at offset \d+/,
  });
  writeFileSync(log, good);
  writeFileSync(join(dir, 'data.key'), new Uint8Array(32).fill(1), { mode: 0o600 });
  t.throws(() => LeafStore.open(files, dir, fresh(suite), { suite }), {
    instanceOf: StoreError,
    message: /does not decrypt/,
  });
  chmodSync(join(dir, 'data.key'), 0o644);
  t.throws(() => LeafStore.open(files, dir, fresh(suite), { suite }), {
    instanceOf: StoreError,
    message: /chmod 600/,
  });
});

test('compaction: snapshot + empty log; a crash between the two is harmless; not-primary writes nothing', async (t) => {
  const suite = await loadSuite();
  const dir = tempDir(t);
  const m = fresh(suite);
  const store = LeafStore.open(files, dir, m, { suite, compactEvery: 7 });
  const cmds = script(12);
  for (const c of cmds) store.commit([c]);
  t.true(store.logRecords < 7);
  store.commit([
    { kind: 'admit', value: { name: 'extra', serial: 'sx', fingerprint: new Uint8Array(32), now: 99 } },
  ]);
  const oldLog = readFileSync(join(dir, 'log'));
  store.compact();
  t.is(statSync(join(dir, 'snapshot')).mode & 0o777, 0o600);
  const want = m.snapshot();
  m.setPrimary(false);
  t.throws(() => store.commit(cmds.slice(0, 1)), { instanceOf: StoreError });
  store.close();
  const m2 = fresh(suite);
  const s2 = LeafStore.open(files, dir, m2, { suite });
  t.deepEqual(m2.snapshot(), want);
  t.is(s2.opened.replayed, 0);
  s2.close();
  // Simulate a crash after the snapshot rename but before the log was replaced.
  writeFileSync(join(dir, 'log'), oldLog);
  const m3 = fresh(suite);
  LeafStore.open(files, dir, m3, { suite }).close();
  t.deepEqual(m3.snapshot(), want);
});

test('SIGKILL during appends: every acknowledged admission survives', async (t) => {
  const suite = await loadSuite();
  const dir = tempDir(t);
  const child = spawn(process.execPath, [fileURLToPath(new URL('./store-child.js', import.meta.url)), dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked: string[] = [];
  let buf = '';
  const target = 60 + Math.floor(Math.random() * 60);
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.startsWith('ack ')) acked.push(l.slice(4));
      if (acked.length >= target && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
  });
  t.true(acked.length >= target);
  const m = fresh(suite);
  const store = LeafStore.open(files, dir, m, { suite });
  store.close();
  for (const name of acked) t.truthy(m.entry(name), `${name} was acknowledged but lost`);
  t.log(`acked ${acked.length}, recovered index ${store.index}, torn bytes ${store.opened.truncatedBytes}`);
});

test('group commit: admissions alone wait for the fsync of the batch that welcomes them; all else syncs at once', async (t) => {
  const suite = await loadSuite();
  const dir = tempDir(t);
  const m = fresh(suite);
  const store = LeafStore.open(files, dir, m, { suite });
  const admit = (i: number): LeafCommand => ({
    kind: 'admit',
    value: { name: `a${i}`, serial: `sa${i}`, fingerprint: new Uint8Array(32).fill(i), now: i },
  });
  for (let i = 0; i < 5; i++) t.deepEqual(store.commit([admit(i)]), [{}]);
  t.deepEqual(store.stats, { syncs: 0, deferredCommits: 5 });
  // The cut that welcomes them produces an epoch: it is fsynced before commit returns.
  const [cut] = store.commit([{ kind: 'cutBatch', value: { epoch: 1, now: 5 } }]);
  t.is(cut?.batch?.admitted.length, 5);
  t.deepEqual(store.stats, { syncs: 1, deferredCommits: 5 });
  // A refused admission is an answer to someone: synced.
  store.commit([{ kind: 'revoke', value: { target: { kind: 'serial', value: 'sx' }, immediate: false } }]);
  t.is(store.stats.syncs, 2);
  const [refused] = store.commit([
    { kind: 'admit', value: { name: 'x', serial: 'sx', fingerprint: new Uint8Array(32), now: 6 } },
  ]);
  t.is(refused?.refused?.reason, 'revoked');
  t.is(store.stats.syncs, 3);
  store.commit([admit(9)]);
  t.is(store.stats.syncs, 3);
  store.close(); // syncs the waiting admission
  t.is(store.stats.syncs, 4);
  const m2 = fresh(suite);
  LeafStore.open(files, dir, m2, { suite }).close();
  t.deepEqual(m2.snapshot(), m.snapshot());
});
