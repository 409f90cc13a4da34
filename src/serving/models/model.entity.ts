import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { PrivacyEvent } from '../../privacy';

/** The privacy guarantee a model was released under. */
export interface ModelGuarantee {
  epsilon: number;
  delta: number;
  accountant: string;
  noiseMultiplier: number;
  clipNorm: number;
  method: string;
  events: PrivacyEvent[];
  datasetFingerprint: string;
  declaredSize: number;
  noiseKind: string;
}

export interface ModelBackboneRef {
  id: string;
  name: string;
  featureLayer: string;
  inputSize: number;
  featureDim: number;
  /** Where the backbone weights come from, copied from the backbone's provenance. */
  pretrainedOn: string;
}

/** Feature post-processing fixed at training time (public statistics only). */
export interface FeaturePreprocessing {
  kind: 'l2-zscore-l2' | 'l2';
  mean?: number[];
  std?: number[];
  statsSource?: string;
}

/** An immutable trained classifier version: backbone reference + linear head + class names + guarantee. */
@Entity({ name: 'models' })
export class TrainedModel {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text')
  name: string;

  @Column('integer')
  version: number;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId: string;

  @Column({ name: 'job_id', type: 'uuid', nullable: true })
  jobId: string | null;

  @Column({ name: 'backbone_id', type: 'text' })
  backboneId: string;

  @Column('jsonb')
  backbone: ModelBackboneRef;

  @Column({ name: 'feature_preprocessing', type: 'jsonb' })
  featurePreprocessing: FeaturePreprocessing;

  @Column({ name: 'class_names', type: 'text', array: true })
  classNames: string[];

  @Column('integer')
  dim: number;

  /** K x dim float64, little endian, row-major. */
  @Column('bytea')
  weights: Buffer;

  @Column({ type: 'bytea', nullable: true })
  bias: Buffer | null;

  @Column('jsonb')
  guarantee: ModelGuarantee;

  @Column({ type: 'jsonb', nullable: true })
  evaluation: Record<string, unknown> | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
