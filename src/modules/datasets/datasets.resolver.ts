import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { asPayload } from '../../common/graphql/payload-errors';
import { decodeCursor, isTimeIdCursor, pageSize, toConnection } from '../../common/graphql/relay';
import { CurrentPrincipal, Roles } from '../auth/auth.decorators';
import { Principal } from '../auth/principal';
import { Role } from '../auth/role';
import { LedgerService } from '../ledger/ledger.service';
import { Dataset } from './dataset.entity';
import { DatasetsService } from './datasets.service';
import {
  DatasetConnection,
  DatasetGrantInput,
  DatasetsArgs,
  RegisterDatasetInput,
  RegisterDatasetResult,
  SetDatasetBudgetInput,
  SetDatasetBudgetResult,
} from './dto/dataset.dto';

@Resolver(() => Dataset)
export class DatasetsResolver {
  constructor(
    private readonly datasetsService: DatasetsService,
    private readonly ledgerService: LedgerService,
  ) {}

  @Query(() => DatasetConnection, { description: 'Datasets the caller may read, oldest first.' })
  async datasets(@Args() args: DatasetsArgs, @CurrentPrincipal() principal: Principal): Promise<DatasetConnection> {
    const first = pageSize(args.first);
    const after = decodeCursor(args.after, isTimeIdCursor);
    const rows = await this.datasetsService.list(principal, {
      first: first + 1,
      after: after && { createdAt: new Date(after[0]), id: after[1] },
      nameContains: args.nameContains ?? undefined,
    });
    return toConnection(rows, first, (d) => [d.createdAt.toISOString(), d.id]);
  }

  @Query(() => Dataset)
  dataset(@Args('id', { type: () => ID }) id: string, @CurrentPrincipal() principal: Principal): Promise<Dataset> {
    return this.datasetsService.assertCanRead(principal, id);
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => RegisterDatasetResult, { description: 'Registers a private dataset with its privacy budget.' })
  registerDataset(@Args('input') input: RegisterDatasetInput, @CurrentPrincipal() principal: Principal): Promise<typeof RegisterDatasetResult> {
    return asPayload(() => this.datasetsService.register(input, principal)) as Promise<typeof RegisterDatasetResult>;
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => SetDatasetBudgetResult, { description: 'Changes the epsilon limit (raising it, or lowering it no further than what is used); recorded in the ledger.' })
  setDatasetBudget(@Args('input') input: SetDatasetBudgetInput, @CurrentPrincipal() principal: Principal): Promise<typeof SetDatasetBudgetResult> {
    return asPayload(async () => {
      await this.ledgerService.changeBudget(input.datasetId, input.epsilonLimit, input.reason, principal);
      return this.datasetsService.get(input.datasetId);
    }) as Promise<typeof SetDatasetBudgetResult>;
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => Dataset, { description: 'Gives an API key (an ml_engineer) access to a dataset.' })
  async grantDatasetAccess(@Args('input') input: DatasetGrantInput, @CurrentPrincipal() principal: Principal): Promise<Dataset> {
    await this.datasetsService.grant(input.datasetId, input.apiKeyId, principal);
    return this.datasetsService.get(input.datasetId);
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => Dataset)
  async revokeDatasetAccess(@Args('input') input: DatasetGrantInput): Promise<Dataset> {
    await this.datasetsService.revokeGrant(input.datasetId, input.apiKeyId);
    return this.datasetsService.get(input.datasetId);
  }
}
