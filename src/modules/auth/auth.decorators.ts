import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { GqlExecutionContext } from '@nestjs/graphql';
import { UnauthenticatedError } from '../../common/errors/domain-errors';
import { Principal } from './principal';
import { Role } from './role';

export const ROLES_KEY = 'privatune:roles';
export const PUBLIC_KEY = 'privatune:public';

/** Roles allowed to call (admin always is). Without @Roles, any authenticated key may call. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

/** No API key needed (health, metrics, the dashboard's static files). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export function requestOf(context: ExecutionContext): { headers: Record<string, string | string[] | undefined>; principal?: Principal } {
  if (context.getType<string>() === 'graphql') return GqlExecutionContext.create(context).getContext().req;
  return context.switchToHttp().getRequest();
}

/** The authenticated caller. */
export const CurrentPrincipal = createParamDecorator((_: unknown, context: ExecutionContext): Principal => {
  const principal = requestOf(context).principal;
  if (!principal) throw new UnauthenticatedError('An API key is required');
  return principal;
});
