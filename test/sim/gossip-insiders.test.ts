/**
 * The gossip simulation with insiders (issue 19 item 4, issue 17 finding 3): honest leaves run
 * the shipped GossipLinkMachine; K insiders holding the MAC and epoch keys relabel genuine
 * parts, send far-future ids and invalid items, and claim honest peers' addresses. Every honest
 * live leaf still gets the rekeys and the data in about the rounds it takes without them, none
 * stores a relabelled or future item, every insider that sent an invalid item is dropped by the
 * leaf that refused it, and no peer held at its genuine address is reached elsewhere.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { attackFailures, runScenario, type ScenarioOptions } from '../../sim/gossip/scenario.js';
import { simAddress, simAddressId } from '../../sim/gossip/world.js';

const suite = await loadSuite();
const base: ScenarioOptions = { n: 600, seed: 7, suite, messages: 2, rekeys: 2, batch: 4, links: true };

test('simulated addresses map back to their leaf', (t) => {
  for (const id of [0, 1, 255, 256, 65_535, 999_999, 2 ** 24 + 5]) t.is(simAddressId(simAddress(id)), id);
  t.is(simAddressId('127.0.0.1:9'), undefined);
});

test('K insiders: honest leaves deliver as without them, store nothing bogus, drop the insiders, keep addresses', (t) => {
  const clean = runScenario(base).report;
  const attacked = runScenario({ ...base, adversaries: 16 }).report;
  const a = attacked.attack!;
  t.log(
    `insiders ${a.insiders}: ${JSON.stringify(a.insiderStats)}; refused ${a.invalidRefused}, drops ${a.distrusts}, ` +
      `insider in active views at end ${a.insiderInActiveViews}; hint-known entries elsewhere ${a.misdirected}`,
  );
  // Every attack was tried.
  t.is(a.insiders, 16);
  for (const [kind, count] of Object.entries(a.insiderStats)) t.true(count > 0, `insiders sent ${kind}`);
  t.deepEqual(attackFailures(a), []);
  t.true(
    a.invalidRefused > 0 && a.distrusts >= a.invalidRefused / 4,
    'refused items cost their sender its place',
  );
  // Delivery: complete, and within a few rounds of the run without insiders.
  const all = [...attacked.data, ...attacked.rekeys];
  const ref = [...clean.data, ...clean.rekeys];
  for (const [i, d] of all.entries()) {
    t.is(d.delivered, d.eligible, `${d.label}: every honest live leaf`);
    t.true(d.r100 <= ref[i]!.r100 + 4, `${d.label}: ${d.r100} rounds vs ${ref[i]!.r100} without insiders`);
    t.log(
      `${d.label}: 99% ${d.r99} / 100% ${d.r100} rounds (without insiders ${ref[i]!.r99} / ${ref[i]!.r100})`,
    );
  }
  t.is(attacked.attack!.bogusOnPath, 0, 'no honest leaf would re-join because of an insider');
});
