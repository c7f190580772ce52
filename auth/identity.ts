/**
 * A member's identity as carried in its certificate: group and role in a SAN URI
 * `keyglass://<group>/<role>/<name>`, the name also being the subject CN.
 * Names are restricted to a small alphabet so they are safe in URIs, file names, logs and
 * metric labels without escaping.
 */
export const ROLES = ['core', 'leaf', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  readonly group: string;
  readonly role: Role;
  readonly name: string;
}

export const IDENTITY_URI_SCHEME = 'keyglass:';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/** True for a group or member name Keyglass accepts (1–64 chars of [A-Za-z0-9._-], not starting with . _ -). */
export function isValidName(s: string): boolean {
  return NAME_RE.test(s);
}

export function identityUri(id: Identity): string {
  if (!isValidName(id.group)) throw new RangeError(`invalid group name '${id.group}'`);
  if (!isValidName(id.name)) throw new RangeError(`invalid member name '${id.name}'`);
  if (!isRole(id.role)) throw new RangeError(`invalid role '${String(id.role)}'`);
  return `keyglass://${id.group}/${id.role}/${id.name}`;
}

/** Parses a SAN URI; undefined if it is not a well-formed Keyglass identity. */
export function parseIdentityUri(uri: string): Identity | undefined {
  const m = /^keyglass:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const [, group, role, name] = m as unknown as [string, string, string, string];
  if (!isValidName(group) || !isRole(role) || !isValidName(name)) return undefined;
  return { group, role, name };
}

export function formatIdentity(id: Identity): string {
  return `${id.group}/${id.role}/${id.name}`;
}
