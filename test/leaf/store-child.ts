/**
 * Child process for the crash test: opens a leaf store and commits admissions (a cut every few)
 * as fast as it can, printing `ack <name>` only after `commit` returned (fsync done). The parent
 * kills it with SIGKILL at a random moment.
 */
import { loadSuite } from '../../crypto/index.js';
import { LeafStateMachine, LeafStore } from '../../core-group/leaf-state/index.js';

const dir = process.argv[2]!;
const suite = await loadSuite();
const machine = new LeafStateMachine({
  suite,
  group: new TextEncoder().encode('g'),
  secret: new Uint8Array(32).fill(5),
});
machine.setPrimary(true);
const store = LeafStore.open(dir, machine, { suite, compactEvery: 25 });
for (let i = 0; i < 100_000; i++) {
  const name = `leaf-${i}`;
  store.commit([
    { kind: 'admit', value: { name, serial: `s${i}`, fingerprint: new Uint8Array(32), now: i } },
  ]);
  process.stdout.write(`ack ${name}\n`);
  if (i % 4 === 3) store.commit([{ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: i } }]);
}
