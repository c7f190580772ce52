import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../ca-tools/index.js';

test('a CA whose store outgrew 1 MiB (thousands of certificates) still issues and lists', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-ca-size-'));
  try {
    const ca = await CertificateAuthority.init({ dir, name: 'Size CA', passphrase: undefined });
    const key = ca.unlock(undefined);
    await ca.issue({ group: 'g', role: 'leaf', name: 'seed' }, key);
    // Grow the store past the 1 MiB PEM bound with copies of the real record (distinct serials
    // and names), as thousands of issuances would.
    const storePath = join(dir, 'store.json');
    const store = JSON.parse(readFileSync(storePath, 'utf8')) as { certificates: Record<string, unknown>[] };
    const seed = store.certificates[0]!;
    for (let i = 0; i < 4000; i++)
      store.certificates.push({ ...seed, serial: (0x100000 + i).toString(16), name: `leaf-${i}` });
    const text = `${JSON.stringify(store, null, 2)}\n`;
    t.true(text.length > 1024 * 1024, `${text.length} bytes`);
    writeFileSync(storePath, text);
    const again = CertificateAuthority.open(dir);
    t.is(again.records().length, 4001);
    const r = await again.issue({ group: 'g', role: 'leaf', name: 'one-more' }, key);
    t.is(r.record.name, 'one-more');
    t.is(again.records().length, 4002);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
