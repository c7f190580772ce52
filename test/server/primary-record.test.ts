/**
 * The durable primary component of one server (primary-record.ts): what it records survives a
 * reopen, the state version moves as the key server drives it, a corrupt record or an older
 * generation refuses to start with one line naming the file, and a generation bump (disaster
 * recovery) forgets the last primary view loudly.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStorage, PrimaryRecord, ServerStartError, type Logger } from '../../server/index.js';
import type { PrimaryKnowledge } from '../../core-group/index.js';

const files = new FileStorage();

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'kg-primary-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function recorder(): { log: Logger; lines: { level: string; msg: string; fields?: object }[] } {
  const lines: { level: string; msg: string; fields?: object }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields?: object): void =>
      void lines.push({ level, msg, ...(fields ? { fields } : {}) });
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

const known: PrimaryKnowledge = {
  lastPrimary: {
    step: 4,
    id: { epoch: 9, coord: 'core-2#1073741825' },
    members: ['core-2#1073741825', 'core-3#7'],
  },
  attempts: [
    { step: 5, id: { epoch: 11, coord: 'core-2#1073741825' }, members: ['core-1#3', 'core-2#1073741825'] },
  ],
};

test('the knowledge and the state version survive a reopen; a gap stops the prefix', (t) =>
  withDir((dir) => {
    const { log } = recorder();
    const r = PrimaryRecord.open(files, dir, 1, 10, log);
    t.is(r.load(), undefined);
    t.deepEqual(r.stateVersion(10), [1, 0, 0, 0]);
    r.primaryInstalled(4, 12);
    r.save(known);
    t.deepEqual(r.stateVersion(15), [1, 4, 3, 0]);
    r.gap(15);
    t.deepEqual(r.stateVersion(17), [1, 4, 3, 2], 'commands after the gap are extra');
    const again = PrimaryRecord.open(files, dir, 1, 17, log);
    t.deepEqual(again.load(), known);
    t.deepEqual(again.stateVersion(17), [1, 4, 3, 2]);
    // A transferred state takes the sender's version at the store's index.
    again.stateInstalled([1, 6, 8, 0], 40);
    t.deepEqual(again.stateVersion(41), [1, 6, 9, 0]);
    t.throws(() => again.stateInstalled([1, 6], 40), { message: /malformed/ });
    // A store younger than the transferred state: the base goes below zero, and reopens.
    again.stateInstalled([1, 6, 500, 0], 41);
    t.deepEqual(PrimaryRecord.open(files, dir, 1, 42, log).stateVersion(42), [1, 6, 501, 0]);
    again.stateInstalled([1, 6, 8, 0], 40);
    // A crash between the store's compaction and the record leaves a version at most the true one.
    t.deepEqual(PrimaryRecord.open(files, dir, 1, 41, log).stateVersion(41), [1, 6, 9, 0]);
  }));

test('a data dir from a version without the record ranks its state by its leaf epoch', (t) =>
  withDir((dir) => {
    const { log, lines } = recorder();
    t.deepEqual(PrimaryRecord.open(files, dir, 0, 40, log, 7).stateVersion(40), [0, 0, 7, 0]);
    t.is(lines.length, 1);
    t.deepEqual(PrimaryRecord.open(files, dir, 0, 40, log, 9).stateVersion(40), [0, 0, 7, 0], 'only once');
  }));

test('a corrupt record, or a record of a later generation, refuses to start naming the file', (t) =>
  withDir((dir) => {
    const { log } = recorder();
    PrimaryRecord.open(files, dir, 2, 0, log);
    t.throws(() => PrimaryRecord.open(files, dir, 1, 0, log), {
      instanceOf: ServerStartError,
      message: /^generation: 1 is older than this data dir's \(2, in .*primary\)$/,
    });
    PrimaryRecord.open(files, dir, 2, 0, log).primaryInstalled(1, 5);
    t.throws(() => PrimaryRecord.open(files, dir, 2, 3, log), {
      instanceOf: ServerStartError,
      message:
        /records a state after command 5, the leaf store ends at 3 \(leaf-state\/ restored or removed\?/,
    });
    for (const bad of [
      '{',
      '{"format":9}',
      '{"format":1,"generation":2,"knowledge":null,"state":{"generation":"x"}}',
    ]) {
      writeFileSync(join(dir, 'primary'), bad);
      t.throws(() => PrimaryRecord.open(files, dir, 2, 0, log), {
        instanceOf: ServerStartError,
        message: /^dataDir: .*primary is corrupt \(/,
      });
    }
    writeFileSync(
      join(dir, 'primary'),
      JSON.stringify({
        format: 1,
        generation: 2,
        knowledge: { lastPrimary: { ...known.lastPrimary, members: ['not a key'] }, attempts: [] },
        state: { generation: 2, step: 0, base: 0 },
      }),
    );
    t.throws(() => PrimaryRecord.open(files, dir, 2, 0, log), {
      message: /knowledge.lastPrimary.members is malformed/,
    });
  }));

test('disaster recovery: a raised generation forgets the last primary view, loudly, and keeps the state version', (t) =>
  withDir((dir) => {
    const quiet = recorder();
    const r = PrimaryRecord.open(files, dir, 0, 0, quiet.log);
    r.primaryInstalled(4, 0);
    r.save(known);
    const { log, lines } = recorder();
    const bumped = PrimaryRecord.open(files, dir, 1, 5, log);
    t.is(bumped.load(), undefined);
    t.deepEqual(bumped.stateVersion(5), [0, 4, 5, 0], 'the state keeps its generation-0 version');
    t.is(lines.length, 1);
    t.is(lines[0]!.level, 'error');
    t.regex(lines[0]!.msg, /^DISASTER RECOVERY: generation raised/);
    // The next primary view of generation 1 is newer than any generation-0 state.
    bumped.primaryInstalled(1, 5);
    t.deepEqual(bumped.stateVersion(5), [1, 1, 0, 0]);
    t.is(PrimaryRecord.open(files, dir, 1, 5, log).load(), undefined);
    t.is(lines.length, 1, 'logged once: the record now has the new generation');
  }));
