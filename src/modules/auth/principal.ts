import { Role } from './role';

/** Who is calling: the authenticated API key, as seen by resolvers and services. */
export interface Principal {
  keyId: string;
  name: string;
  role: Role;
}

export function hasRole(principal: Principal, roles: readonly Role[]): boolean {
  return principal.role === Role.ADMIN || roles.includes(principal.role);
}
