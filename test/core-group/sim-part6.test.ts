import test from 'ava';
import { runSeeds } from './sim-seeds.js';

test('core simulation: seeds 251..300 keep every property', (t) => {
  runSeeds(
    t,
    Array.from({ length: 50 }, (_, i) => 251 + i),
  );
});
