/**
 * Who may do what. Roles are ordered: a viewer reads, an operator also triggers actions (scan,
 * download, install, reboot, catalog sync, content cleanup), an admin also changes rules, rings,
 * users, tokens and enrollment tokens. Agents are a separate kind: they reach only the agent
 * gateway's routes (/api/v1/agent/…, access `agent`), which check agent credentials themselves.
 *
 * Every route declares its access in `config.access`; a route that forgets is admin-only.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** `public`: no credential (health, login, enrollment); `agent`: an enrolled agent's credential. */
export const ACCESS_LEVELS = ['public', 'viewer', 'operator', 'admin', 'agent'] as const;
export type Access = (typeof ACCESS_LEVELS)[number];
export const DEFAULT_ACCESS: Access = 'admin';

export type Principal =
  | {
      readonly kind: 'user';
      readonly name: string;
      readonly role: Role;
      readonly sessionHash: string;
      readonly csrfToken: string;
    }
  | { readonly kind: 'token'; readonly id: string; readonly name: string; readonly role: Role };

export const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);

/** True when `role` may use a route of `access` (never for `agent` routes). */
export function roleAllows(role: Role, access: Access): boolean {
  if (access === 'public') return true;
  if (access === 'agent') return false;
  return ROLES.indexOf(role) >= ROLES.indexOf(access);
}

/** How the audit log names a principal: `user:alice`, `token:ci` (the gateway writes `agent:web01`). */
export function actorOf(principal: Principal): string {
  switch (principal.kind) {
    case 'user':
      return `user:${principal.name}`;
    case 'token':
      return `token:${principal.name}`;
  }
}
