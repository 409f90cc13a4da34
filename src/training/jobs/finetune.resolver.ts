import { Args, ID, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { asPayload } from '../../common/graphql/payload-errors';
import { decodeCursor, isTimeIdCursor, PageArgs, pageSize, toConnection } from '../../common/graphql/relay';
import { CurrentPrincipal, Roles } from '../../modules/auth/auth.decorators';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { DatasetsService } from '../../modules/datasets/datasets.service';
import { toInsufficientBudgetObject } from '../../modules/ledger/ledger.resolver';
import { toEventObject } from '../../modules/privacy/dto/privacy-event.dto';
import { CancelFinetuneInput, FinetuneJobConnection, FinetuneJobObject, RequestFinetuneInput, RequestFinetuneResult } from './dto/finetune.dto';
import { FinetuneJob } from './finetune-job.entity';
import { FinetuneJobsService } from './finetune-jobs.service';
import { FinetuneWorker } from './finetune-worker.service';

export function toJobObject(j: FinetuneJob, replayed = false): FinetuneJobObject {
  return Object.assign(new FinetuneJobObject(), {
    id: j.id,
    datasetId: j.datasetId,
    reservationId: j.reservationId,
    status: j.status,
    method: j.method,
    modelName: j.modelName,
    backbone: j.options.backboneId,
    featureLayer: j.options.featureLayer,
    inputSize: j.options.inputSize,
    noiseMultiplier: j.noiseMultiplier,
    delta: j.delta,
    targetEpsilon: j.targetEpsilon,
    epsilon: j.epsilon,
    events: j.events.map(toEventObject),
    progress: j.progress,
    stage: j.stageDetail,
    error: j.error,
    errorCode: j.errorCode,
    timings: JSON.stringify(j.timings ?? {}),
    modelId: j.modelId,
    replayed,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
  });
}

@Resolver(() => FinetuneJobObject)
export class FinetuneJobFieldsResolver {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @ResolveField(() => String, {
    nullable: true,
    description: 'Evaluation of the trained model as JSON text: `public` (free, public data) and/or `private` (noisy held-out count, charged).',
  })
  async evaluation(@Parent() job: FinetuneJobObject): Promise<string | null> {
    if (!job.modelId) return null;
    const [row] = await this.db.query('SELECT evaluation FROM models WHERE id = $1', [job.modelId]);
    return row?.evaluation ? JSON.stringify(row.evaluation) : null;
  }
}

@Resolver()
export class FinetuneResolver {
  constructor(
    private readonly jobs: FinetuneJobsService,
    private readonly worker: FinetuneWorker,
    private readonly datasets: DatasetsService,
  ) {}

  @Roles(Role.ML_ENGINEER)
  @Mutation(() => RequestFinetuneResult, { description: 'Requests a private finetune: reserves the budget and queues the job in one transaction.' })
  requestFinetune(@Args('input') input: RequestFinetuneInput, @CurrentPrincipal() principal: Principal): Promise<typeof RequestFinetuneResult> {
    return asPayload(async () => {
      const { job, replayed } = await this.jobs.request(
        {
          ...input,
          publicEvaluation: input.publicEvaluation ? { format: input.publicEvaluation.format, location: input.publicEvaluation.location } : undefined,
          privateEvaluation: input.privateEvaluation ? { fraction: input.privateEvaluation.fraction, noiseMultiplier: input.privateEvaluation.noiseMultiplier ?? undefined } : undefined,
        },
        principal,
      );
      this.worker.poke();
      return toJobObject(job, replayed);
    }, toInsufficientBudgetObject) as Promise<typeof RequestFinetuneResult>;
  }

  @Roles(Role.ML_ENGINEER)
  @Mutation(() => FinetuneJobObject, { description: 'Cancels a job; free before its noisy release, impossible after.' })
  async cancelFinetune(@Args('input') input: CancelFinetuneInput, @CurrentPrincipal() principal: Principal): Promise<FinetuneJobObject> {
    return toJobObject(await this.jobs.cancel(input.jobId, principal));
  }

  @Query(() => FinetuneJobObject, { description: 'A finetune job with its status and progress (poll it while it runs).' })
  async finetuneJob(@Args('id', { type: () => ID }) id: string, @CurrentPrincipal() principal: Principal): Promise<FinetuneJobObject> {
    return toJobObject(await this.jobs.get(id, principal));
  }

  @Query(() => FinetuneJobConnection, { description: 'Finetune jobs on a dataset, oldest first.' })
  async finetuneJobs(@Args('datasetId', { type: () => ID }) datasetId: string, @Args() page: PageArgs, @CurrentPrincipal() principal: Principal): Promise<FinetuneJobConnection> {
    await this.datasets.assertCanRead(principal, datasetId).catch(async (err) => {
      await this.datasets.assertCanTrain(principal, datasetId).catch(() => Promise.reject(err));
    });
    const first = pageSize(page.first);
    const after = decodeCursor(page.after, isTimeIdCursor);
    const rows = await this.jobs.list(datasetId, { first: first + 1, after: after && { createdAt: new Date(after[0]), id: after[1] } });
    const conn = toConnection(rows, first, (j) => [j.createdAt.toISOString(), j.id]);
    return { pageInfo: conn.pageInfo, edges: conn.edges.map((e) => ({ cursor: e.cursor, node: toJobObject(e.node) })) };
  }
}
