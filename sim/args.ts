/** Command-line flags of the simulations (`npm run sim -- <subject> …`). */

/** The non-negative integer after `flag`, or undefined when the flag is absent. */
export function intArg(args: readonly string[], flag: string): number | undefined {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${flag} needs a non-negative integer`);
  return v;
}
