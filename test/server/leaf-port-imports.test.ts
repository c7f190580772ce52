/**
 * What the leaf port's TLS thread loads: the compiled modules reachable by static import from its
 * entry (server/leaf-port-thread.js). Loading the leaf plane or the core stack there made every
 * TLS worker load the whole server and slowed its start (commit 3278edb); leaf-port.ts, which
 * the thread shares with the main thread's LeafPort host, must keep those imports type-only.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const SPECIFIER =
  /(?:\bimport|\bexport)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(?\s*['"]([^'"]+)['"]/g;

/** The dist-relative paths of every relative module reachable from `entry` by import or re-export. */
function moduleGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [resolve(DIST, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    const rel = relative(DIST, file);
    if (seen.has(rel)) continue;
    seen.add(rel);
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
    }
  }
  return seen;
}

test('the leaf port TLS thread loads neither the leaf plane nor the core stack nor the server host', (t) => {
  const graph = moduleGraph('server/leaf-port-thread.js');
  t.true(graph.has('server/leaf-port.js'), 'the walk follows imports');
  t.true(graph.has('net/tls.js'), 'the walk follows re-exports');
  const heavy = [...graph].filter(
    (f) =>
      f.startsWith('leaf-plane/') ||
      f.startsWith('core-group/') ||
      (f.startsWith('server/') && !['server/leaf-port-thread.js', 'server/leaf-port.js'].includes(f)),
  );
  t.deepEqual(heavy, []);
});
