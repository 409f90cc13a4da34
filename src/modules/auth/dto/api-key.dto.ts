import { Field, ID, InputType, ObjectType } from '@nestjs/graphql';
import { Connection } from '../../../common/graphql/relay';
import { ApiKey } from '../api-key.entity';
import { Role } from '../role';

@ObjectType()
export class ApiKeyConnection extends Connection(ApiKey, 'ApiKey') {}

@InputType()
export class CreateApiKeyInput {
  @Field()
  name: string;

  @Field(() => Role)
  role: Role;
}

@ObjectType()
export class CreateApiKeyPayload {
  @Field(() => ApiKey)
  apiKey: ApiKey;

  @Field({ description: 'The key itself. Shown only here, once; store it now.' })
  key: string;
}

@InputType()
export class RevokeApiKeyInput {
  @Field(() => ID)
  id: string;
}

@ObjectType({ description: 'The caller, as identified by its API key.' })
export class Me {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field(() => Role)
  role: Role;
}
