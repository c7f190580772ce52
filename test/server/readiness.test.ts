/** Readiness (readiness.ts) on an injected clock: the reasons, the gauges, the once-a-minute warning. */
import test from 'ava';
import { Registry } from 'prom-client';
import { Readiness, NOT_PRIMARY_WARN_AFTER_MS } from '../../server/index.js';
import type { Logger } from '../../server/index.js';

function setup(): { r: Readiness; warns: string[]; registry: Registry; clock: { now: number } } {
  const warns: string[] = [];
  const log: Logger = { debug: () => {}, info: () => {}, warn: (m) => warns.push(m), error: () => {} };
  const clock = { now: 1_000_000 };
  const registry = new Registry();
  return { r: new Readiness(registry, log, () => clock.now), warns, registry, clock };
}

test('ready only in a primary view holding its core key', (t) => {
  const { r } = setup();
  t.is(r.report().reason, 'starting');
  r.start();
  r.viewInstalled('1@a#0', false);
  t.is(r.report().reason, 'not-primary');
  r.stateTransferStarted();
  r.viewInstalled('2@a#0', true);
  t.is(r.report().reason, 'no-core-key');
  r.keyCommitted('2@a#0');
  t.true(r.report().ready);
  r.viewInstalled('3@a#0', true); // a new view: its key is not committed yet
  t.is(r.report().reason, 'no-core-key');
  r.stop();
  t.is(r.report().reason, 'stopping');
});

test('outside the primary component past the bound: one warning a minute, and the gauges', async (t) => {
  const { r, warns, registry, clock } = setup();
  r.start();
  r.viewInstalled('1@a#0', true);
  r.keyCommitted('1@a#0');
  t.regex(await registry.metrics(), /^keyglass_primary 1$/m);
  r.viewInstalled('2@a#0', false);
  clock.now += NOT_PRIMARY_WARN_AFTER_MS - 1;
  r.tick();
  t.is(warns.length, 0);
  clock.now += 1;
  r.tick();
  r.tick();
  t.is(warns.length, 1);
  clock.now += 60_000;
  r.tick();
  t.is(warns.length, 2);
  const text = await registry.metrics();
  t.regex(text, /^keyglass_primary 0$/m);
  t.regex(text, /^keyglass_seconds_since_primary 120$/m);
  r.viewInstalled('3@a#0', true);
  r.tick();
  t.is(warns.length, 2);
  t.regex(await registry.metrics(), /^keyglass_seconds_since_primary 0$/m);
});
