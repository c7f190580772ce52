/**
 * Child process for the crash test: opens a leaf store and commits admissions (a cut every few)
 * as fast as it can, printing `ack <name>` for each admission only after the commit of the cut
 * that welcomes it returned (its fsync done: how a server acknowledges an admission). The parent
 * kills it with SIGKILL at a random moment.
 */
import { loadSuite } from '../../crypto/index.js';
import { LeafStateMachine, LeafStore } from '../../leaf-plane/index.js';
import { FileStorage } from '../../server/index.js';

const dir = process.argv[2]!;
const suite = await loadSuite();
const machine = new LeafStateMachine({
  suite,
  group: new TextEncoder().encode('g'),
  secret: new Uint8Array(32).fill(5),
});
machine.setPrimary(true);
const store = LeafStore.open(new FileStorage(), dir, machine, { suite, compactEvery: 25 });
let waiting: string[] = [];
for (let i = 0; i < 100_000; i++) {
  const name = `leaf-${i}`;
  store.commit([
    { kind: 'admit', value: { name, serial: `s${i}`, fingerprint: new Uint8Array(32), now: i } },
  ]);
  waiting.push(name);
  if (i % 4 === 3) {
    const [cut] = store.commit([{ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: i } }]);
    if (cut?.batch === undefined) throw new Error('a cut after admissions must produce an epoch');
    process.stdout.write(waiting.map((n) => `ack ${n}\n`).join(''));
    waiting = [];
  }
}
