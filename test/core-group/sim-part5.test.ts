import test from 'ava';
import { runSeeds } from './sim-seeds.js';

test('core simulation: seeds 201..250 keep every property', (t) => {
  runSeeds(
    t,
    Array.from({ length: 50 }, (_, i) => 201 + i),
  );
});
