/**
 * FileStorage, the Storage a server runs on: atomic replace with the given mode, appends that
 * land at the end, truncate, bounded reads, and node's errors as StorageErrors with a code.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError } from '../../leaf-plane/index.js';
import { FileStorage } from '../../server/index.js';

test('replace, append, truncate, read and stat on the file system; errors carry a code', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fs = new FileStorage();
  const sub = join(dir, 'a', 'b');
  fs.ensureDir(sub, 0o700);
  t.is(statSync(join(dir, 'a')).mode & 0o777, 0o700);
  const f = join(sub, 'f');
  t.is(fs.stat(f), undefined);
  t.is(fs.read(f), undefined);
  t.throws(() => fs.openAppend(f), { instanceOf: StorageError, message: /ENOENT/ });
  t.like(
    tryCode(() => fs.openAppend(f)),
    { code: 'not-found', path: f },
  );
  t.like(
    tryCode(() => fs.replace(join(dir, 'none', 'x'), new Uint8Array(1), 0o600)),
    { code: 'not-found' },
  );

  fs.replace(f, Uint8Array.of(1, 2, 3), 0o600);
  t.deepEqual(fs.stat(f), { size: 3, mode: 0o600 });
  t.deepEqual(readdirSync(sub), ['f'], 'no temporary file is left behind');
  const h = fs.openAppend(f);
  h.append(Uint8Array.of(4, 5));
  h.sync();
  t.deepEqual(fs.read(f), Uint8Array.of(1, 2, 3, 4, 5));
  h.truncate(2);
  h.append(Uint8Array.of(9));
  h.sync();
  t.deepEqual(new Uint8Array(readFileSync(f)), Uint8Array.of(1, 2, 9), 'O_APPEND: writes go to the new end');
  t.like(
    tryCode(() => fs.read(f, 2)),
    { code: 'too-large' },
  );
  t.deepEqual(fs.read(f, 3), Uint8Array.of(1, 2, 9));
  h.close();
  t.like(
    tryCode(() => h.append(Uint8Array.of(1))),
    { code: 'closed' },
  );
  // A replace over a file keeps its atomicity: the new content, the new mode.
  fs.replace(f, Uint8Array.of(7), 0o644);
  t.deepEqual(fs.stat(f), { size: 1, mode: 0o644 });
});

function tryCode(fn: () => unknown): StorageError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  return undefined;
}
