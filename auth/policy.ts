/**
 * Admission policy: which roles each group admits, and name allow/deny patterns.
 *
 *   { "groups": { "prod": { "roles": ["core", "leaf"], "allow": ["edge-*"], "deny": ["edge-old-*"] },
 *                 "*":    { "roles": ["operator"] } } }
 *
 * A group without an entry falls back to "*"; with neither it is refused. Deny beats allow;
 * when `allow` is given the name must match one of its patterns. Patterns are globs over
 * member names with `*` (any run) and `?` (one character) — no regular expressions, so a
 * policy file cannot carry a catastrophic-backtracking pattern.
 */
import { isRole, type Identity, type Role } from './identity.js';

const MAX_PATTERNS = 256;
const MAX_PATTERN_LENGTH = 128;

export interface GroupRule {
  readonly roles: readonly Role[];
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

export interface AdmissionPolicy {
  readonly groups: Readonly<Record<string, GroupRule>>;
}

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/** An in-code policy that admits every role of every group (the chain and role checks still apply). */
export const ADMIT_ALL_POLICY: AdmissionPolicy = { groups: { '*': { roles: ['core', 'leaf', 'operator'] } } };

function patternList(v: unknown, where: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > MAX_PATTERNS)
    throw new PolicyError(`${where} must be a list of at most ${MAX_PATTERNS} patterns`);
  return v.map((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.length > MAX_PATTERN_LENGTH) {
      throw new PolicyError(
        `${where}[${i}] must be a non-empty string of at most ${MAX_PATTERN_LENGTH} characters`,
      );
    }
    return p;
  });
}

/** Validates a parsed JSON value as an admission policy (throws PolicyError with the offending path). */
export function parseAdmissionPolicy(json: unknown): AdmissionPolicy {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new PolicyError('policy must be a JSON object');
  const groupsIn = (json as Record<string, unknown>)['groups'];
  if (typeof groupsIn !== 'object' || groupsIn === null || Array.isArray(groupsIn)) {
    throw new PolicyError('policy.groups must be an object');
  }
  const groups: Record<string, GroupRule> = {};
  for (const [g, rule] of Object.entries(groupsIn as Record<string, unknown>)) {
    const where = `policy.groups.${g}`;
    if (typeof rule !== 'object' || rule === null) throw new PolicyError(`${where} must be an object`);
    const r = rule as Record<string, unknown>;
    const roles = r['roles'];
    if (!Array.isArray(roles) || !roles.every((x) => typeof x === 'string' && isRole(x))) {
      throw new PolicyError(`${where}.roles must be a list of core, leaf, operator`);
    }
    const allow = patternList(r['allow'], `${where}.allow`);
    const deny = patternList(r['deny'], `${where}.deny`);
    groups[g] = { roles: roles as Role[], ...(allow ? { allow } : {}), ...(deny ? { deny } : {}) };
  }
  return { groups };
}

/** Glob match with `*` and `?`, linear time (greedy with one backtrack point). */
export function globMatch(pattern: string, s: string): boolean {
  let p = 0;
  let i = 0;
  let star = -1;
  let mark = 0;
  while (i < s.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === s[i])) {
      p++;
      i++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = i;
    } else if (star >= 0) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** undefined if admitted, otherwise a one-line explanation. */
export function policyRefusal(policy: AdmissionPolicy, id: Identity): string | undefined {
  const rule = policy.groups[id.group] ?? policy.groups['*'];
  if (!rule) return `group '${id.group}' is not in the admission policy`;
  if (!rule.roles.includes(id.role)) return `role '${id.role}' is not admitted to group '${id.group}'`;
  if (rule.deny?.some((p) => globMatch(p, id.name))) return `name '${id.name}' matches a deny pattern`;
  if (rule.allow && !rule.allow.some((p) => globMatch(p, id.name)))
    return `name '${id.name}' matches no allow pattern`;
  return undefined;
}
