import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ForbiddenError, UnauthenticatedError } from '../../common/errors/domain-errors';
import { requestContext } from '../../common/logging/request-context';
import { ApiKeysService } from './api-keys.service';
import { PUBLIC_KEY, requestOf, ROLES_KEY } from './auth.decorators';
import { hasRole } from './principal';
import { Role } from './role';

/** Global guard: `Authorization: Bearer <key>` on everything that is not @Public, then the @Roles check. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const req = requestOf(context);
    if (!req.principal) {
      const header = req.headers['authorization'];
      const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
      if (!match) throw new UnauthenticatedError('An API key is required: send Authorization: Bearer <key>');
      const principal = await this.keys.authenticate(match[1]);
      if (!principal) throw new UnauthenticatedError('The API key is invalid or revoked');
      req.principal = principal;
      const ctx = requestContext.getStore();
      if (ctx) ctx.caller = principal.keyId;
    }
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets);
    if (roles && !hasRole(req.principal, roles)) {
      throw new ForbiddenError(`This operation needs one of the roles: ${['admin', ...roles].join(', ')}`);
    }
    return true;
  }
}
