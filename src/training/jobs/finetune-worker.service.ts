/**
 * The finetune worker. Claims queued jobs from PostgreSQL (FOR UPDATE SKIP LOCKED, so any number of worker
 * processes can share one database), and for each: extracts (or loads cached) features, marks the
 * reservation released, trains the DP head with CSPRNG noise, then stores the model, commits the
 * reservation and finishes the job in one transaction. A failure before the release aborts the
 * reservation; a failure after it commits it (the noise was drawn: the budget is spent).
 *
 * Jobs whose worker stopped heartbeating (killed, machine lost) are recovered by any worker with the same
 * rule: released -> committed, not released -> aborted. Nothing is ever silently dropped.
 *
 * A worker asked to stop (SIGTERM: a deploy, a scale-down) drains before anything else shuts down: a job
 * still extracting features goes back to the queue at its next checkpoint, its reservation still open and
 * counted, for the next worker to run from the start; a job past its noisy release is finished (the budget
 * is spent either way, so its model is worth the wait).
 */
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { context, metrics, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { DomainError } from '../../common/errors/domain-errors';
import { computeEpsilon, secureNoise } from '../../privacy';
import { Dataset } from '../../modules/datasets/dataset.entity';
import { ReadinessRegistry } from '../../modules/health/readiness.registry';
import { LedgerService } from '../../modules/ledger/ledger.service';
import { Reservation } from '../../modules/ledger/reservation.entity';
import { TrainedModel } from '../../serving/models/model.entity';
import { BackbonesService } from '../backbones/backbones.service';
import { loadPublicStats } from '../backbones';
import { accuracy, HeadResult } from '../heads';
import { datasetFeatures } from '../finetune/dataset-features';
import { trainHeadInThread } from '../finetune/head-thread';
import { noisyHoldoutAccuracy, splitHoldout } from '../finetune/private-evaluation';
import { applyFeaturePreprocessing, featurePreprocessingFor } from '../finetune/train-head';
import { FinetuneJob, FinetuneJobStatus, RUNNING_STATUSES } from './finetune-job.entity';
import { heldOutCount } from './finetune-options';

const tracer = trace.getTracer('privatune.training');
const meter = metrics.getMeter('privatune.training');
const jobDuration = meter.createHistogram('privatune_finetune_job_duration', { description: 'Finetune job wall time by method and outcome', unit: 's' });
const jobsFinished = meter.createCounter('privatune_finetune_jobs', { description: 'Finished finetune jobs by method and outcome' });

class JobCancelled extends Error {}
/** The worker is stopping and the job has released nothing: it goes back to the queue. */
class JobInterrupted extends Error {}

@Injectable()
export class FinetuneWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('FinetuneWorker');
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private wake: (() => void) | undefined;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly ledger: LedgerService,
    private readonly backbones: BackbonesService,
    private readonly readiness: ReadinessRegistry,
  ) {}

  get enabled(): boolean {
    return this.config.role !== 'api' && this.config.worker.concurrency > 0;
  }

  onApplicationBootstrap(): void {
    this.readiness.register('tensorEngine', async () => ({ ready: true, details: await this.backbones.tensorBackend() }));
    if (!this.enabled) return;
    for (let i = 0; i < this.config.worker.concurrency; i++) this.loops.push(this.loop());
    this.logger.log({ msg: 'finetune worker started', workerId: this.workerId, concurrency: this.config.worker.concurrency });
  }

  /**
   * Runs before any module's shutdown hook (the HTTP server, the extraction threads and the database all
   * close after it), so the jobs in hand can be handed back or finished with everything they need.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await Promise.all(this.loops);
  }

  /** Lets a waiting loop look for work now (called after a job is queued in this process). */
  poke(): void {
    this.wake?.();
  }

  private async loop(): Promise<void> {
    let lastRecovery = 0;
    while (!this.stopping) {
      try {
        if (Date.now() - lastRecovery > this.config.worker.heartbeatMs) {
          lastRecovery = Date.now();
          await this.recoverAbandoned();
        }
        const job = await this.claim();
        if (job) await this.run(job);
        else await this.idle(this.config.worker.pollMs);
      } catch (err) {
        this.logger.error(err as Error);
        await this.idle(this.config.worker.pollMs);
      }
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const previous = this.wake;
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        previous?.();
        done();
      };
    });
  }

  private async claim(): Promise<FinetuneJob | undefined> {
    const rows: { id: string }[] = await this.db.query(
      `UPDATE finetune_jobs SET status = 'EXTRACTING', worker_id = $1, heartbeat_at = now(), started_at = now(), stage_detail = 'starting'
       WHERE id = (SELECT id FROM finetune_jobs WHERE status = 'QUEUED' ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
       RETURNING id`,
      [this.workerId],
    );
    const id = rows[0]?.id ?? (Array.isArray(rows[0]) ? (rows[0] as unknown as { id: string }[])[0]?.id : undefined);
    return id ? this.db.getRepository(FinetuneJob).findOneByOrFail({ id }) : undefined;
  }

  /** Runs one claimed job to its end; never throws. */
  async run(job: FinetuneJob): Promise<void> {
    const parent = propagation.extract(context.active(), job.traceContext ?? {});
    const span = tracer.startSpan('finetune.job', { attributes: { 'privatune.job_id': job.id, 'privatune.method': job.method, 'privatune.dataset_id': job.datasetId } }, parent);
    const started = Date.now();
    const timings: Record<string, number> = {};
    let progress = 0;
    let stage = 'extracting features';
    let released = false;
    const heartbeat = setInterval(() => {
      void this.db
        .query(`UPDATE finetune_jobs SET heartbeat_at = now(), progress = $2, stage_detail = $3 WHERE id = $1 AND worker_id = $4 RETURNING cancel_requested`, [job.id, progress, stage, this.workerId])
        .then((r: unknown) => {
          const rows = (Array.isArray(r) && Array.isArray(r[0]) ? r[0] : r) as { cancel_requested: boolean }[];
          if (rows[0]?.cancel_requested) job.cancelRequested = true;
        })
        .catch((err: Error) => this.logger.warn({ msg: 'heartbeat failed', jobId: job.id, error: err.message }));
    }, Math.max(200, Math.floor(this.config.worker.heartbeatMs / 3)));
    const checkpoint = () => {
      if (job.cancelRequested) throw new JobCancelled('cancelled');
      if (this.stopping) throw new JobInterrupted('the worker is stopping');
    };

    await context.with(trace.setSpan(parent, span), async () => {
      try {
        const dataset = await this.db.getRepository(Dataset).findOneByOrFail({ id: job.datasetId });
        const spec = await this.backbones.get(job.options.backboneId);
        const t0 = Date.now();
        const fx = await tracer.startActiveSpan('finetune.load_backbone', async (s) => {
          try {
            return await this.backbones.extractor(spec, job.options.featureLayer, job.options.inputSize);
          } finally {
            s.end();
          }
        });
        const thread = this.backbones.extractionThread(fx);
        timings.loadBackboneMs = Date.now() - t0;
        const t1 = Date.now();
        const feats = await tracer.startActiveSpan('finetune.extract_features', async (s) => {
          try {
            const r = await datasetFeatures({
              source: { format: dataset.format, location: dataset.location },
              fingerprint: dataset.fingerprint,
              count: dataset.declaredSize,
              extractor: fx,
              thread,
              cacheDir: this.config.artifactDir,
              onProgress: (done, total) => {
                progress = 0.8 * (done / total);
                stage = `extracting features ${done}/${total}`;
              },
              checkpoint,
            });
            s.setAttribute('privatune.features_cached', r.cached);
            return r;
          } finally {
            s.end();
          }
        });
        timings.extractMs = Date.now() - t1;
        timings.featuresCached = feats.cached ? 1 : 0;
        // 1 when the backbone ran in an extraction thread (ONNX Runtime), 0 on this thread (TF.js) or when cached.
        timings.extractedInThread = thread && !feats.cached ? 1 : 0;
        const pre = featurePreprocessingFor(loadPublicStats(spec.id, fx.featureLayer, fx.inputSize));
        const X = applyFeaturePreprocessing({ data: feats.features, rows: feats.rows, cols: feats.dim }, pre);
        const holdoutEvery = job.options.privateEvaluation?.every;
        const split = holdoutEvery ? splitHoldout(X, feats.labels, holdoutEvery) : { train: { features: X, labels: feats.labels }, holdout: undefined };
        checkpoint(); // the last moment a cancel costs nothing

        stage = 'training';
        progress = 0.8;
        await this.db.query(`UPDATE finetune_jobs SET status = 'TRAINING', progress = $2, stage_detail = $3 WHERE id = $1`, [job.id, progress, stage]);
        // From here on noise is drawn: the reservation can only be committed.
        await this.ledger.markReleased(job.reservationId);
        released = true;
        if (this.config.worker.testPauseAfterReleaseMs) await new Promise((r) => setTimeout(r, this.config.worker.testPauseAfterReleaseMs));
        const t2 = Date.now();
        const head = await tracer.startActiveSpan('finetune.train_head', async (s) => {
          try {
            return await trainHeadInThread(
              {
                features: split.train.features,
                labels: split.train.labels,
                numClasses: dataset.classNames.length,
                // Public: the declared size minus the index-determined holdout.
                declaredSize: dataset.declaredSize - (holdoutEvery ? heldOutCount(dataset.declaredSize, holdoutEvery) : 0),
                options: job.options,
                noiseMultiplier: job.noiseMultiplier,
              },
              (step, total) => {
                progress = 0.8 + 0.15 * (step / total);
              },
            );
          } finally {
            s.end();
          }
        });
        timings.trainMs = Date.now() - t2;
        const evaluation = await this.evaluate(job, fx, pre, head);
        if (split.holdout) {
          evaluation.private = noisyHoldoutAccuracy(head, split.holdout, job.options.privateEvaluation!.noiseMultiplier, secureNoise());
        }
        await tracer.startActiveSpan('finetune.commit', async (s) => {
          try {
            await this.finish(job, dataset, spec, fx, pre, head, evaluation, { ...timings, totalMs: Date.now() - started });
          } finally {
            s.end();
          }
        });
        span.setStatus({ code: SpanStatusCode.OK });
        this.record(job, 'succeeded', started);
      } catch (err) {
        if (err instanceof JobInterrupted && !released) {
          span.addEvent('finetune.requeued', { 'privatune.reason': err.message });
          await this.requeue(job);
          this.record(job, 'requeued', started);
          return;
        }
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        await this.fail(job, err, released, { ...timings, totalMs: Date.now() - started });
        this.record(job, err instanceof JobCancelled ? 'cancelled' : 'failed', started);
      } finally {
        clearInterval(heartbeat);
        span.end();
      }
    });
  }

  private async evaluate(job: FinetuneJob, fx: Awaited<ReturnType<BackbonesService['extractor']>>, pre: ReturnType<typeof featurePreprocessingFor>, head: HeadResult): Promise<Record<string, unknown>> {
    const source = job.options.publicEvaluation;
    if (!source) return {};
    const { inspectDataset } = await import('../data');
    const info = await inspectDataset(source);
    const thread = this.backbones.extractionThread(fx);
    const feats = await datasetFeatures({ source, fingerprint: info.fingerprint, count: info.count, extractor: fx, thread, cacheDir: this.config.artifactDir });
    const X = applyFeaturePreprocessing({ data: feats.features, rows: feats.rows, cols: feats.dim }, pre);
    // Public data: accuracy is post-processing of the released model and costs no budget.
    return { public: { kind: 'public', location: source.location, examples: info.count, accuracy: accuracy(head, X, feats.labels), charged: false } };
  }

  private async finish(job: FinetuneJob, dataset: Dataset, spec: Awaited<ReturnType<BackbonesService['get']>>, fx: Awaited<ReturnType<BackbonesService['extractor']>>, pre: ReturnType<typeof featurePreprocessingFor>, head: HeadResult, evaluation: Record<string, unknown>, timings: Record<string, number>): Promise<void> {
    await this.db.transaction(async (tx: EntityManager) => {
      // One version number per model name, even with concurrent jobs.
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`model:${job.modelName}`]);
      const [{ next }] = await tx.query('SELECT COALESCE(max(version), 0) + 1 AS next FROM models WHERE name = $1', [job.modelName]);
      const modelId = randomUUID();
      const epsilon = computeEpsilon(job.events, job.delta, 'auto');
      const model: TrainedModel = {
        id: modelId,
        name: job.modelName,
        version: next,
        datasetId: dataset.id,
        jobId: job.id,
        backboneId: spec.id,
        backbone: { id: spec.id, name: spec.name, featureLayer: fx.featureLayer, inputSize: fx.inputSize, featureDim: fx.featureDim, pretrainedOn: spec.provenance.trainingData },
        featurePreprocessing: pre,
        classNames: dataset.classNames,
        dim: head.dim,
        weights: Buffer.from(head.weights.buffer, head.weights.byteOffset, head.weights.byteLength),
        bias: head.bias ? Buffer.from(head.bias.buffer, head.bias.byteOffset, head.bias.byteLength) : null,
        guarantee: {
          epsilon: epsilon.epsilon,
          delta: job.delta,
          accountant: epsilon.accountant,
          noiseMultiplier: job.noiseMultiplier,
          clipNorm: head.clipNorm,
          method: job.method,
          events: job.events,
          datasetFingerprint: dataset.fingerprint,
          declaredSize: dataset.declaredSize,
          noiseKind: head.noiseKind,
        },
        evaluation: Object.keys(evaluation).length ? evaluation : null,
        createdAt: new Date(),
      };
      await tx.getRepository(TrainedModel).insert(model as never);
      await this.ledger.commit(job.reservationId, null, { jobId: job.id, modelId, modelName: job.modelName, version: next, worker: this.workerId }, tx);
      await tx.query(
        `UPDATE finetune_jobs SET status = 'SUCCEEDED', progress = 1, stage_detail = 'succeeded', model_id = $2, timings = $3, finished_at = now() WHERE id = $1`,
        [job.id, modelId, JSON.stringify(timings)],
      );
    });
    this.logger.log({ msg: 'finetune job succeeded', jobId: job.id, model: job.modelName, timings });
  }

  /**
   * Hands a job that released nothing back to the queue (first in line again: the queue is ordered by
   * creation). Its reservation stays open, so the budget it holds stays counted until a worker finishes or
   * fails it. If this update fails the job keeps its stale heartbeat and recovery aborts it instead.
   */
  private async requeue(job: FinetuneJob): Promise<void> {
    try {
      await this.db.query(
        `UPDATE finetune_jobs SET status = 'QUEUED', worker_id = NULL, heartbeat_at = NULL, started_at = NULL, progress = 0,
           stage_detail = 'queued again: its worker stopped before any release' WHERE id = $1 AND worker_id = $2`,
        [job.id, this.workerId],
      );
      this.logger.log({ msg: 'finetune job handed back to the queue (worker stopping)', jobId: job.id });
    } catch (err) {
      this.logger.error({ msg: 'could not hand a job back to the queue; recovery will abort it', jobId: job.id, error: (err as Error).message });
    }
  }

  private async fail(job: FinetuneJob, err: unknown, released: boolean, timings: Record<string, number>): Promise<void> {
    const cancelled = err instanceof JobCancelled;
    const code = cancelled ? 'CANCELLED' : err instanceof DomainError ? err.code : ((err as { code?: string }).code ?? 'JOB_FAILED');
    const message = cancelled ? 'cancelled before any release' : (err as Error).message;
    if (!cancelled) this.logger.error({ msg: 'finetune job failed', jobId: job.id, released, error: message });
    try {
      await this.db.transaction(async (tx) => {
        const details = { jobId: job.id, worker: this.workerId, reason: message };
        if (released) await this.ledger.commit(job.reservationId, null, details, tx);
        else await this.ledger.abort(job.reservationId, null, details, tx);
        await tx.query(
          `UPDATE finetune_jobs SET status = $2, error = $3, error_code = $4, stage_detail = $5, timings = $6, finished_at = now() WHERE id = $1`,
          [
            job.id,
            cancelled ? FinetuneJobStatus.CANCELLED : FinetuneJobStatus.FAILED,
            cancelled ? null : released ? `${message} (after the noisy release: the budget is spent)` : message,
            code,
            cancelled ? 'cancelled' : 'failed',
            JSON.stringify(timings),
          ],
        );
      });
    } catch (inner) {
      // The reservation stays OPEN (still counted); recovery resolves it later.
      this.logger.error({ msg: 'could not resolve a failed job; recovery will', jobId: job.id, error: (inner as Error).message });
    }
  }

  /** Resolves jobs whose worker stopped heartbeating: committed if anything was released, else aborted. */
  async recoverAbandoned(): Promise<number> {
    const stale: FinetuneJob[] = await this.db.getRepository(FinetuneJob).createQueryBuilder('j')
      .where('j.status IN (:...running)', { running: RUNNING_STATUSES })
      .andWhere(`j.heartbeat_at < now() - make_interval(secs => :secs)`, { secs: this.config.worker.heartbeatMs * 3 / 1000 })
      .getMany();
    for (const job of stale) {
      await this.db.transaction(async (tx) => {
        const locked = await tx.getRepository(FinetuneJob).createQueryBuilder('j').setLock('pessimistic_write').setOnLocked('skip_locked').where('j.id = :id', { id: job.id }).getOne();
        if (!locked || !RUNNING_STATUSES.includes(locked.status)) return;
        const reservation = await tx.findOneByOrFail(Reservation, { id: locked.reservationId });
        const details = { jobId: locked.id, recoveredBy: this.workerId, lostWorker: locked.workerId };
        const message = reservation.released
          ? 'the worker stopped after the noisy release; the budget is spent and the result is lost'
          : 'the worker stopped before any release; the reservation was aborted';
        if (reservation.status === 'OPEN') {
          if (reservation.released) await this.ledger.commit(reservation.id, null, details, tx);
          else await this.ledger.abort(reservation.id, null, details, tx);
        }
        await tx.query(`UPDATE finetune_jobs SET status = 'FAILED', error = $2, error_code = 'WORKER_LOST', stage_detail = 'failed', finished_at = now() WHERE id = $1`, [locked.id, message]);
        this.logger.warn({ msg: 'recovered abandoned finetune job', jobId: locked.id, released: reservation.released });
      });
    }
    return stale.length;
  }

  private record(job: FinetuneJob, outcome: string, started: number): void {
    const attrs = { method: job.method, outcome };
    jobDuration.record((Date.now() - started) / 1000, attrs);
    jobsFinished.add(1, attrs);
  }
}
