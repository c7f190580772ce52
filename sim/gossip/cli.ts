/**
 * `npm run sim -- gossip --n N [--loss P] [--crashed F] [--seed S] [--messages M] [--rekeys R --batch B] [--churn C] [--partition ROUNDS] [--bimodal RUNS] [--progress 1] [--config key=value,...] [--links 1] [--adversaries K]`
 * (progress per round on stderr; on by default from n = 3·10^5). `--links 1`: honest leaves run
 * the shipped GossipLinkMachine; `--adversaries K`: K insiders attack (implies links; world.ts).
 */
import { loadSuite } from '../../crypto/index.js';
import { attackFailures, bimodality, formatReport, runScenario } from './scenario.js';

export async function gossipMain(args: string[]): Promise<number> {
  const opt = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      console.error(`gossip: unexpected argument '${a}'`);
      return 2;
    }
    opt.set(a.slice(2), args[++i] ?? '');
  }
  const num = (k: string, d: number): number => {
    const v = opt.has(k) ? Number(opt.get(k)) : d;
    if (!Number.isFinite(v)) throw new RangeError(`--${k} needs a number`);
    return v;
  };
  const config: Record<string, number> = {};
  for (const kv of (opt.get('config') ?? '').split(',').filter((x) => x !== '')) {
    const [k, v] = kv.split('=');
    if (k === undefined || v === undefined || !Number.isFinite(Number(v)))
      throw new RangeError(`--config needs key=number pairs, got '${kv}'`);
    config[k] = Number(v);
  }
  const n = num('n', 10_000);
  const seed = num('seed', 1);
  const loss = num('loss', 0);
  const suite = await loadSuite();
  if (opt.has('bimodal')) {
    const b = bimodality({
      n,
      runs: num('bimodal', 100),
      loss,
      seed,
      deadlineRounds: num('deadline', 20),
      config,
      suite,
    });
    console.log(
      `bimodality n=${n} loss=${loss}: ${b.almostAll} almost all, ${b.almostNone} almost none, ${b.between} between (of ${b.runs})`,
    );
    return 0;
  }
  const { report } = runScenario({
    n,
    seed,
    loss,
    crashed: num('crashed', 0),
    messages: num('messages', 3),
    rekeys: num('rekeys', 1),
    batch: num('batch', Math.max(1, Math.round(n / 1000))),
    churn: num('churn', 0),
    partitionRounds: num('partition', 0),
    links: num('links', 0) === 1,
    adversaries: num('adversaries', 0),
    config,
    suite,
    ...(opt.has('progress') || n >= 300_000
      ? { progress: (line: string) => console.error(`  ${line}`) }
      : {}),
  });
  console.log(formatReport(report));
  const undelivered = [...report.data, ...report.rekeys].some((d) => d.delivered !== d.eligible);
  if (undelivered) console.log('  NOT every live leaf delivered');
  const attacked = report.attack === undefined ? [] : attackFailures(report.attack);
  for (const f of attacked) console.log(`  ATTACK CHECKER: ${f}`);
  return undelivered || attacked.length > 0 ? 1 : 0;
}
