import { Args, Mutation, Query, Resolver } from '@nestjs/graphql';
import { decodeCursor, isTimeIdCursor, PageArgs, pageSize, toConnection } from '../../common/graphql/relay';
import { ApiKey } from './api-key.entity';
import { ApiKeysService } from './api-keys.service';
import { CurrentPrincipal, Roles } from './auth.decorators';
import { ApiKeyConnection, CreateApiKeyInput, CreateApiKeyPayload, Me, RevokeApiKeyInput } from './dto/api-key.dto';
import { Principal } from './principal';
import { Role } from './role';

@Resolver(() => ApiKey)
export class AuthResolver {
  constructor(private readonly keys: ApiKeysService) {}

  @Query(() => Me, { description: 'The calling API key.' })
  me(@CurrentPrincipal() principal: Principal): Me {
    return { id: principal.keyId, name: principal.name, role: principal.role };
  }

  @Roles(Role.ADMIN)
  @Query(() => ApiKeyConnection, { description: 'API keys (admin only), oldest first; revoked keys are left out.' })
  async apiKeys(@Args() page: PageArgs): Promise<ApiKeyConnection> {
    const first = pageSize(page.first);
    const after = decodeCursor(page.after, isTimeIdCursor);
    const rows = await this.keys.list({ first: first + 1, after: after && { createdAt: new Date(after[0]), id: after[1] } });
    return toConnection(rows, first, (k) => [k.createdAt.toISOString(), k.id]);
  }

  @Roles(Role.ADMIN)
  @Mutation(() => CreateApiKeyPayload, { description: 'Creates an API key (admin only).' })
  async createApiKey(@Args('input') input: CreateApiKeyInput, @CurrentPrincipal() principal: Principal): Promise<CreateApiKeyPayload> {
    return this.keys.create({ ...input, createdBy: principal.keyId });
  }

  @Roles(Role.ADMIN)
  @Mutation(() => ApiKey, { description: 'Revokes an API key at once (admin only).' })
  revokeApiKey(@Args('input') input: RevokeApiKeyInput): Promise<ApiKey> {
    return this.keys.revoke(input.id);
  }
}

