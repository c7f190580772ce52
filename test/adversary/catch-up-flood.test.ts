/**
 * Issue 17, finding 4: one admitted leaf floods its core server with catch-up requests.
 *
 * Three real `keyglass server` processes on 127.0.0.1; 60 leaves joined one batch at a time, so
 * the server's rekey history holds ~60 signed epochs. The attacker ("mallory", a valid leaf
 * certificate, welcomed) sends raw `catchUpRequest` frames over its TLS link as fast as the link
 * takes them — for the oldest epoch and the slot of ANOTHER leaf (the largest reply there is) —
 * and links again (resuming its admission) whenever the server drops it. Meanwhile an honest leaf
 * on the same server must keep receiving its keys, the server must stay in the primary view, and
 * its main thread (core group heartbeats, total order, leaf protocol) must stay under
 * MAX_MAIN_SHARE of a core. The attacker must get no rekey part of another leaf's path.
 */
import test from 'ava';
import { decodeWelcome } from '../../keytree/index.js';
import { encodeLeafFrame, type LeafFrame } from '../../gossip-edge/index.js';
import { Cluster, rawLeafLink, until, type RawLeafLink } from '../server/cluster.js';
import { joinedRaw, mainCpuSeconds } from './leaf-edge-kit.js';

const FILLERS = 60;
const FLOOD_MS = 6000;
/**
 * The flood is paced (~25,000 requests/s: 1,250 times an honest leaf's budget, and over ten
 * times what the unthrottled server could serve at 0.48 ms each), not as fast as this process
 * can encrypt: at full speed it took both cores of a 2-core CI machine for 6 s and disturbed the
 * real-process test file running beside it.
 */
const FLOOD_BURST = 128;
const FLOOD_PAUSE_MS = 5;
/**
 * The attacked server's main-thread CPU over the flood, as a share of one core. Unthrottled, each
 * request costs ~0.1–0.5 ms of that thread (a reply of up to 64 signed epochs) and the attacker
 * keeps it saturated; throttled, a refused request costs a frame decode and a table lookup. The
 * bound leaves room for the core group's own work and for a machine shared with other processes.
 */
const MAX_MAIN_SHARE = 0.35;

const cluster = new Cluster();

test.before(async () => {
  await cluster.init();
  await cluster.startServers(3, { leaseMs: 120_000 });
  await cluster.untilOnePrimaryView();
});

test.after.always(async () => {
  await cluster.stop();
});

test('a catch-up flood from one admitted leaf: server stays primary, main thread bounded, no foreign path', async (t) => {
  t.timeout(120_000);
  const [target, other] = [cluster.servers[0]!, cluster.servers[1]!];
  // History: one epoch per filler (each joins in its own batch, then drops its link; the long
  // lease keeps it in the tree).
  await cluster.issueMany(
    'leaf',
    Array.from({ length: FILLERS }, (_, i) => `filler-${i}`),
  );
  for (let i = 0; i < FILLERS; i++) await (await joinedRaw(cluster, `filler-${i}`, other)).link.close();
  const honest = await cluster.leaf('honest', 0, { gossip: false });
  await cluster.issue('leaf', 'mallory');
  const mallory = await joinedRaw(cluster, 'mallory', target);
  const admittedEpoch = mallory.welcome.admittedEpoch;
  const ownSlot = decodeWelcome(mallory.welcome.welcome).slot;
  const foreignSlot = ownSlot === 0 ? 1 : 0;
  const st = await cluster.status(target);
  t.is(st.view.members.length, 3);
  t.log(`history: leaf epoch ${st.leafEpoch}, ${st.leaves} leaves; mallory at slot ${ownSlot}`);

  let foreignPushes = 0;
  let replies = 0;
  let refusals = 0;
  let relinks = 0;
  const onFrame = (f: LeafFrame): void => {
    if (f.type === 'catchUpReply') {
      replies++;
      foreignPushes += f.body.pushes.length;
    } else if (f.type === 'error') refusals++;
  };
  const request = encodeLeafFrame('catchUpRequest', { fromEpoch: 1, slot: foreignSlot });
  let link: RawLeafLink = mallory.link;
  mallory.onFrame = onFrame;
  let sent = 0;
  const flooding = (async () => {
    const end = Date.now() + FLOOD_MS;
    while (Date.now() < end) {
      if (!link.up) {
        await link.close();
        try {
          link = await rawLeafLink(cluster, 'mallory', target.ports.leaf, onFrame);
          relinks++;
          link.send(
            encodeLeafFrame('join', { resume: { admittedEpoch, epoch: st.leafEpoch }, crlNumber: undefined }),
          );
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
        continue;
      }
      for (let k = 0; k < FLOOD_BURST && link.send(request); k++) sent++;
      await new Promise((r) => setTimeout(r, FLOOD_PAUSE_MS));
    }
  })();

  // While it floods: the views (every 250 ms), new epochs reaching the honest leaf, and the
  // attacked server's main-thread CPU over the window after a 1 s warm-up.
  // The attacked server must stay in the primary view: it reports a primary view holding itself,
  // and no server's primary view leaves it out. (A bystander's view change is logged, not
  // failed: attacker, servers and other tests share 2 cores here, and a starved idle server is
  // the machine's doing, not the attacked server's.)
  const targetMember = st.member;
  let lostPrimary = '';
  let otherChanges = '';
  const watching = (async () => {
    const end = Date.now() + FLOOD_MS;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 250));
      const views = await Promise.all(
        cluster.servers.map((s) =>
          cluster.status(s).then(
            (x) => x.view,
            (e: Error) => e.message,
          ),
        ),
      );
      const own = views[0]!;
      const excluded =
        typeof own === 'string' ||
        !own.primary ||
        !own.members.includes(targetMember) ||
        views.some((v) => typeof v !== 'string' && v.primary && !v.members.includes(targetMember));
      if (excluded && lostPrimary === '') lostPrimary = JSON.stringify(views);
      if (
        !excluded &&
        otherChanges === '' &&
        views.some((v) => typeof v === 'string' || v.members.length !== 3)
      )
        otherChanges = JSON.stringify(views);
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  // A scrape the starved server cannot answer (3 s) counts as a saturated main thread.
  const cpu = (): Promise<number> => mainCpuSeconds(cluster, target).catch(() => NaN);
  const cpu0 = await cpu();
  const wall0 = performance.now();
  const keysBefore = honest.keys.length;
  for (let i = 0; i < 3; i++) {
    await cluster.issue('leaf', `late-${i}`);
    await (await joinedRaw(cluster, `late-${i}`, other)).link.close();
  }
  const honestKeys = await until(
    'the honest leaf on the attacked server gets the 3 new epochs',
    () => honest.keys.length >= keysBefore + 3,
    10_000,
  ).then(
    () => '',
    (e: Error) => e.message,
  );
  await new Promise((r) => setTimeout(r, Math.max(0, wall0 + 4000 - performance.now())));
  const share = ((await cpu()) - cpu0) / ((performance.now() - wall0) / 1000);
  await flooding;
  await watching;
  await link.close();
  t.log(
    `flood: ${sent} requests sent, ${replies} replies (${foreignPushes} pushes of another leaf's path), ` +
      `${refusals} refusals, ${relinks} re-links; main thread ${(100 * share).toFixed(1)} % of a core`,
  );
  t.is(honestKeys, '', 'the honest leaf kept receiving keys');
  if (otherChanges !== '') t.log(`a bystander's view changed meanwhile: ${otherChanges}`);
  t.is(lostPrimary, '', 'the attacked server stayed in the primary view');
  t.true(
    share <= MAX_MAIN_SHARE,
    `main thread at ${(100 * share).toFixed(1)} % of a core (bound ${100 * MAX_MAIN_SHARE} %)`,
  );
  t.is(foreignPushes, 0, "no rekey part of another leaf's path reached the attacker");
  t.is(honest.evicted.length, 0);
});
