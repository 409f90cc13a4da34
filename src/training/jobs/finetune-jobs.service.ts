/**
 * Finetune requests: the budget reservation and the job row are written in one transaction, so a job can
 * never exist without its reservation or the reverse. Cancelling a queued job aborts its reservation;
 * a running job stops at its next checkpoint, before any release if it has not made one.
 */
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { context, propagation } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { BadInputError, NotFoundError, PreconditionFailedError } from '../../common/errors/domain-errors';
import { isUuid } from '../../common/uuid';
import { computeEpsilon } from '../../privacy';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { DatasetsService } from '../../modules/datasets/datasets.service';
import { LedgerService } from '../../modules/ledger/ledger.service';
import { BackbonesService } from '../backbones/backbones.service';
import { FinetuneJob, FinetuneJobStatus } from './finetune-job.entity';
import { chooseNoiseMultiplier, finetuneEvents, FinetuneOptionsInput, resolveFinetuneOptions } from './finetune-options';

export interface FinetuneRequest extends FinetuneOptionsInput {
  datasetId: string;
  backbone?: string;
  modelName?: string;
  targetEpsilon?: number | null;
  noiseMultiplier?: number | null;
  delta?: number | null;
  idempotencyKey?: string | null;
}

@Injectable()
export class FinetuneJobsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly datasets: DatasetsService,
    private readonly ledger: LedgerService,
    @Inject(BackbonesService) private readonly backbones: BackbonesService,
  ) {}

  async request(req: FinetuneRequest, principal: Principal): Promise<{ job: FinetuneJob; replayed: boolean }> {
    const dataset = await this.datasets.assertCanTrain(principal, req.datasetId);
    const backbone = await this.backbones.get(req.backbone ?? 'mobilenet_v2');
    const options = resolveFinetuneOptions(req, backbone);
    const delta = req.delta ?? dataset.delta;
    if (!(delta > 0 && delta <= dataset.delta)) {
      throw new BadInputError(`delta must be in (0, ${dataset.delta}], the dataset's delta`, { field: 'delta' });
    }
    const sigma = chooseNoiseMultiplier(options, { targetEpsilon: req.targetEpsilon, noiseMultiplier: req.noiseMultiplier, delta });
    const events = finetuneEvents(options, sigma);
    const epsilon = computeEpsilon(events, delta, 'auto').epsilon;
    const modelName = (req.modelName ?? `${dataset.name}-${options.method.toLowerCase()}`).replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 100);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(modelName)) throw new BadInputError('modelName must start with a letter or digit and use letters, digits, _ . -', { field: 'modelName' });

    const traceContext: Record<string, string> = {};
    propagation.inject(context.active(), traceContext);
    return this.db.transaction('READ COMMITTED', async (tx) => {
      const spent = await this.ledger.reserve(
        {
          datasetId: dataset.id,
          events,
          purpose: `finetune ${options.method} on ${backbone.id}/${options.featureLayer}@${options.inputSize}px -> model ${modelName}`,
          purposeKind: 'FINETUNE_JOB',
          requester: principal,
          idempotencyKey: req.idempotencyKey ?? undefined,
          details: { method: options.method, noiseMultiplier: sigma, targetEpsilon: req.targetEpsilon ?? null, delta, modelName },
        },
        tx,
      );
      if (spent.replayed) {
        const job = await tx.findOneOrFail(FinetuneJob, { where: { reservationId: spent.reservation.id } });
        return { job, replayed: true };
      }
      const job = tx.create(FinetuneJob, {
        id: randomUUID(),
        datasetId: dataset.id,
        reservationId: spent.reservation.id,
        requestedBy: principal.keyId,
        status: FinetuneJobStatus.QUEUED,
        method: options.method,
        modelName,
        options,
        noiseMultiplier: sigma,
        delta,
        targetEpsilon: req.targetEpsilon ?? null,
        epsilon,
        events,
        progress: 0,
        stageDetail: 'queued',
        error: null,
        errorCode: null,
        workerId: null,
        heartbeatAt: null,
        cancelRequested: false,
        traceContext,
        timings: {},
        modelId: null,
        createdAt: new Date(),
        startedAt: null,
        finishedAt: null,
      });
      await tx.getRepository(FinetuneJob).insert(job as never);
      return { job, replayed: false };
    });
  }

  async get(id: string, principal: Principal): Promise<FinetuneJob> {
    const job = isUuid(id) ? await this.db.getRepository(FinetuneJob).findOne({ where: { id } }) : null;
    if (!job) throw new NotFoundError(`finetune job ${id} not found`);
    if (principal.role === Role.ML_ENGINEER && job.requestedBy !== principal.keyId) await this.datasets.assertCanTrain(principal, job.datasetId);
    else await this.datasets.assertCanRead(principal, job.datasetId);
    return job;
  }

  list(datasetId: string, opts: { first: number; after?: { createdAt: Date; id: string } }): Promise<FinetuneJob[]> {
    const qb = this.db.getRepository(FinetuneJob).createQueryBuilder('j').where('j.dataset_id = :datasetId', { datasetId })
      .orderBy('j.created_at', 'ASC').addOrderBy('j.id', 'ASC').limit(opts.first);
    if (opts.after) qb.andWhere('(j.created_at, j.id) > (:createdAt, :id)', opts.after);
    return qb.getMany();
  }

  /** Cancels a job: a queued one at once (its reservation is aborted); a running one at its next checkpoint. */
  async cancel(id: string, principal: Principal): Promise<FinetuneJob> {
    const job = await this.get(id, principal);
    if (principal.role !== Role.ADMIN && job.requestedBy !== principal.keyId) throw new PreconditionFailedError('only the requester or an admin can cancel a job');
    return this.db.transaction(async (tx) => {
      const locked = await tx.getRepository(FinetuneJob).createQueryBuilder('j').setLock('pessimistic_write').where('j.id = :id', { id }).getOneOrFail();
      if (locked.status === FinetuneJobStatus.QUEUED) {
        await this.ledger.abort(locked.reservationId, principal, { reason: 'cancelled before it started', jobId: id }, tx);
        await tx.update(FinetuneJob, { id }, { status: FinetuneJobStatus.CANCELLED, finishedAt: new Date(), stageDetail: 'cancelled', cancelRequested: true });
      } else if (locked.status === FinetuneJobStatus.EXTRACTING || locked.status === FinetuneJobStatus.TRAINING) {
        await tx.update(FinetuneJob, { id }, { cancelRequested: true });
      }
      return tx.findOneOrFail(FinetuneJob, { where: { id } });
    });
  }
}
