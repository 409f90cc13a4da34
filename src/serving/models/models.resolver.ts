import { Args, ID, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { decodeCursor, isTimeIdCursor, pageSize, toConnection } from '../../common/graphql/relay';
import { CurrentPrincipal, Roles } from '../../modules/auth/auth.decorators';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { AliasChange, DeploymentsService } from '../deployments/deployments.service';
import { ServingRegistry } from '../deployments/serving-registry.service';
import {
  ModelAliasObject,
  ModelConnection,
  ModelDeploymentObject,
  ModelGrantInput,
  ModelGrantObject,
  ModelObject,
  ModelRefInput,
  ModelsArgs,
  ModelServingStatus,
  RemoveModelAliasInput,
  SetModelAliasInput,
} from './dto/model.dto';
import { TrainedModel } from './model.entity';
import { ModelsService } from './models.service';

@Resolver(() => ModelObject)
export class ModelsResolver {
  constructor(
    private readonly modelsService: ModelsService,
    private readonly deployments: DeploymentsService,
    private readonly registry: ServingRegistry,
  ) {}

  private async toObject(m: TrainedModel): Promise<ModelObject> {
    const names = await this.modelsService.datasetNames([m.datasetId]);
    return this.modelsService.toObject(m, names.get(m.datasetId) ?? null);
  }

  private async toAliasObject(c: AliasChange): Promise<ModelAliasObject> {
    return Object.assign(new ModelAliasObject(), {
      name: c.name,
      alias: c.alias,
      ref: `${c.name}@${c.alias}`,
      model: await this.toObject(c.model),
      previousModelId: c.previousModelId,
      updatedAt: c.updatedAt,
    });
  }

  @Query(() => ModelConnection, { description: 'Model versions the caller may read, oldest first.' })
  async models(@Args() args: ModelsArgs, @CurrentPrincipal() principal: Principal): Promise<ModelConnection> {
    const first = pageSize(args.first);
    const after = decodeCursor(args.after, isTimeIdCursor);
    const rows = await this.modelsService.list(principal, {
      first: first + 1,
      after: after && { createdAt: new Date(after[0]), id: after[1] },
      datasetId: args.dataset ?? undefined,
      backbone: args.backbone ?? undefined,
      name: args.name ?? undefined,
      deployed: args.deployed ?? undefined,
    });
    const conn = toConnection(rows, first, (m) => [m.createdAt.toISOString(), m.id]);
    const names = await this.modelsService.datasetNames(conn.edges.map((e) => e.node.datasetId));
    return { pageInfo: conn.pageInfo, edges: conn.edges.map((e) => ({ cursor: e.cursor, node: this.modelsService.toObject(e.node, names.get(e.node.datasetId) ?? null) })) };
  }

  @Query(() => ModelObject, { description: 'One model version: by id, name@version, name@alias, or name (its highest version).' })
  async model(@Args('id', { type: () => ID }) id: string, @CurrentPrincipal() principal: Principal): Promise<ModelObject> {
    return this.toObject(await this.modelsService.getReadable(principal, id));
  }

  @ResolveField(() => ModelDeploymentObject, { description: 'Whether the version is deployed, and its status on the replica that answered.' })
  deployment(@Parent() m: ModelObject): ModelDeploymentObject {
    const s = this.registry.statusOf(m.id);
    return Object.assign(new ModelDeploymentObject(), {
      deployed: s !== null,
      deployedAt: s?.deployedAt ?? null,
      status: s ? (s.status as ModelServingStatus) : ModelServingStatus.NOT_DEPLOYED,
      error: s?.error ?? null,
    });
  }

  @ResolveField(() => [String], { description: 'Aliases pointing at this version (e.g. production), as name@alias.' })
  aliases(@Parent() m: ModelObject): string[] {
    return this.registry.aliasesOf(m.id).map((a) => `${m.name}@${a}`);
  }

  @Roles(Role.ML_ENGINEER)
  @Mutation(() => ModelObject, {
    description: 'Deploys a model version on every API replica. It is loaded and warmed up (one inference) here before the deployment is written; other replicas pick it up within SERVING_SYNC_MS.',
  })
  async deployModel(@Args('input') input: ModelRefInput, @CurrentPrincipal() principal: Principal): Promise<ModelObject> {
    return this.toObject(await this.deployments.deploy(principal, input.model));
  }

  @Roles(Role.ML_ENGINEER)
  @Mutation(() => ModelObject, { description: 'Stops serving a model version (refused with CONFLICT while an alias points at it).' })
  async undeployModel(@Args('input') input: ModelRefInput, @CurrentPrincipal() principal: Principal): Promise<ModelObject> {
    return this.toObject(await this.deployments.undeploy(principal, input.model));
  }

  @Roles(Role.ML_ENGINEER)
  @Mutation(() => ModelAliasObject, { description: 'Points name@alias (e.g. fashion@production) at a deployed version of that name, atomically; requests that follow use the new version.' })
  async setModelAlias(@Args('input') input: SetModelAliasInput, @CurrentPrincipal() principal: Principal): Promise<ModelAliasObject> {
    return this.toAliasObject(await this.deployments.setAlias(principal, input.model, input.alias));
  }

  @Roles(Role.ML_ENGINEER)
  @Mutation(() => ModelAliasObject, { description: 'Removes name@alias; returns what it pointed at.' })
  async removeModelAlias(@Args('input') input: RemoveModelAliasInput, @CurrentPrincipal() principal: Principal): Promise<ModelAliasObject> {
    return this.toAliasObject(await this.deployments.removeAlias(principal, input.name, input.alias));
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => ModelGrantObject, { description: 'Lets an API key (an inference_client) classify with every version and alias of a model name.' })
  async grantModelAccess(@Args('input') input: ModelGrantInput, @CurrentPrincipal() principal: Principal): Promise<ModelGrantObject> {
    const g = await this.modelsService.grant(input.modelName, input.apiKeyId, principal);
    await this.registry.refresh();
    return Object.assign(new ModelGrantObject(), { modelName: g.modelName, apiKeyId: g.apiKeyId, createdAt: g.createdAt });
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => Boolean, { description: 'Withdraws a model grant; true when one was removed. Other replicas follow within SERVING_SYNC_MS.' })
  async revokeModelAccess(@Args('input') input: ModelGrantInput): Promise<boolean> {
    const removed = await this.modelsService.revokeGrant(input.modelName, input.apiKeyId);
    await this.registry.refresh();
    return removed;
  }
}
