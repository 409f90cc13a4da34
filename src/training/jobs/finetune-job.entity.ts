import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { PrivacyEvent } from '../../privacy';
import type { ResolvedFinetuneOptions } from './finetune-options';

export enum FinetuneJobStatus {
  QUEUED = 'QUEUED',
  EXTRACTING = 'EXTRACTING',
  TRAINING = 'TRAINING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}

export const RUNNING_STATUSES = [FinetuneJobStatus.EXTRACTING, FinetuneJobStatus.TRAINING];
export const FINAL_STATUSES = [FinetuneJobStatus.SUCCEEDED, FinetuneJobStatus.FAILED, FinetuneJobStatus.CANCELLED];

/** A requested private finetune; the table is also the work queue. */
@Entity({ name: 'finetune_jobs' })
export class FinetuneJob {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId: string;

  @Column({ name: 'reservation_id', type: 'uuid' })
  reservationId: string;

  @Column({ name: 'requested_by', type: 'uuid', nullable: true })
  requestedBy: string | null;

  @Column({ type: 'enum', enum: FinetuneJobStatus, enumName: 'finetune_job_status' })
  status: FinetuneJobStatus;

  @Column('text')
  method: string;

  @Column({ name: 'model_name', type: 'text' })
  modelName: string;

  @Column('jsonb')
  options: ResolvedFinetuneOptions;

  @Column({ name: 'noise_multiplier', type: 'double precision' })
  noiseMultiplier: number;

  @Column({ type: 'double precision' })
  delta: number;

  @Column({ name: 'target_epsilon', type: 'double precision', nullable: true })
  targetEpsilon: number | null;

  /** Epsilon of this job's releases on their own, at `delta`. */
  @Column({ type: 'double precision' })
  epsilon: number;

  @Column('jsonb')
  events: PrivacyEvent[];

  @Column('double precision')
  progress: number;

  @Column({ name: 'stage_detail', type: 'text' })
  stageDetail: string;

  @Column({ type: 'text', nullable: true })
  error: string | null;

  @Column({ name: 'error_code', type: 'text', nullable: true })
  errorCode: string | null;

  @Column({ name: 'worker_id', type: 'text', nullable: true })
  workerId: string | null;

  @Column({ name: 'heartbeat_at', type: 'timestamptz', nullable: true })
  heartbeatAt: Date | null;

  @Column({ name: 'cancel_requested', type: 'boolean' })
  cancelRequested: boolean;

  @Column({ name: 'trace_context', type: 'jsonb' })
  traceContext: Record<string, string>;

  @Column('jsonb')
  timings: Record<string, number>;

  @Column({ name: 'model_id', type: 'uuid', nullable: true })
  modelId: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'started_at', type: 'timestamptz', nullable: true })
  startedAt: Date | null;

  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true })
  finishedAt: Date | null;
}
