import { createUnionType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ValidationError } from '../../../common/graphql/payload-errors';
import { Connection } from '../../../common/graphql/relay';
import { DatasetFormat } from '../../../modules/datasets/dataset.entity';
import { InsufficientBudgetErrorObject } from '../../../modules/ledger/dto/ledger.dto';
import { PrivacyEventObject } from '../../../modules/privacy/dto/privacy-event.dto';
import { FinetuneJobStatus } from '../finetune-job.entity';

export enum FinetuneMethodEnum {
  LEAST_SQUARES = 'LEAST_SQUARES',
  SINGLE_STEP = 'SINGLE_STEP',
  DP_SGD = 'DP_SGD',
}
registerEnumType(FinetuneMethodEnum, {
  name: 'FinetuneMethod',
  description: 'LEAST_SQUARES: DP least squares (default, best at small epsilon); SINGLE_STEP: one full-batch DP-SGD step from zero; DP_SGD: several steps.',
});
export enum OptimizerEnum {
  SGD = 'SGD',
  ADAM = 'ADAM',
  LAMB = 'LAMB',
}
registerEnumType(OptimizerEnum, { name: 'Optimizer' });
registerEnumType(FinetuneJobStatus, { name: 'FinetuneJobStatus' });

@InputType()
export class PublicDatasetInput {
  @Field(() => DatasetFormat)
  format: DatasetFormat;

  @Field()
  location: string;
}

@InputType({ description: 'Hold out a share of the private data and release its accuracy as a noisy count, charged to the ledger.' })
export class PrivateEvaluationInput {
  @Field(() => Float, { description: 'Share held out, in (0, 0.5]: every round(1/fraction)-th example.' })
  fraction: number;

  @Field(() => Float, { nullable: true, description: 'Noise multiplier of the released count (default 20).' })
  noiseMultiplier?: number;
}

@InputType({ description: 'Give targetEpsilon (sigma is calibrated with the ledger\'s accountant) or noiseMultiplier.' })
export class RequestFinetuneInput {
  @Field(() => ID)
  datasetId: string;

  @Field({ defaultValue: 'mobilenet_v2' })
  backbone: string;

  @Field(() => String, { nullable: true, description: 'Default: the backbone\'s default layer (block_13_expand_relu for mobilenet_v2).' })
  featureLayer?: string;

  @Field(() => Int, { nullable: true, description: 'Default: the layer\'s default size (96 for block_13_expand_relu).' })
  inputSize?: number;

  @Field(() => FinetuneMethodEnum, { defaultValue: FinetuneMethodEnum.LEAST_SQUARES })
  method: FinetuneMethodEnum;

  @Field(() => Float, { nullable: true })
  targetEpsilon?: number;

  @Field(() => Float, { nullable: true })
  noiseMultiplier?: number;

  @Field(() => Float, { nullable: true, description: 'Default: the dataset\'s delta.' })
  delta?: number;

  @Field(() => Float, { nullable: true, description: 'Per-example clip norm (default 1 for LEAST_SQUARES and SINGLE_STEP, where features are unit-norm; 0.1 for DP_SGD).' })
  clipNorm?: number;

  @Field(() => Float, { nullable: true, description: 'LEAST_SQUARES ridge lambda (default 10 * noiseMultiplier).' })
  ridge?: number;

  @Field(() => Int, { nullable: true, description: 'DP_SGD steps (default 1000).' })
  steps?: number;

  @Field(() => Float, { nullable: true, description: 'DP_SGD Poisson sampling rate (default 1: full batch).' })
  samplingRate?: number;

  @Field(() => OptimizerEnum, { nullable: true, description: 'DP_SGD optimiser (default SGD with momentum 0.9).' })
  optimizer?: OptimizerEnum;

  @Field(() => Float, { nullable: true, description: 'Default: 256 for DP_SGD with SGD (at clip norm 0.1), 0.01 for ADAM and LAMB, 1 for SINGLE_STEP.' })
  learningRate?: number;

  @Field(() => Float, { nullable: true, description: 'SGD momentum (default 0.9).' })
  momentum?: number;

  @Field(() => Boolean, { nullable: true, description: 'Learn a bias (an appended constant feature). Default false: it shares the clip norm with the features.' })
  fitBias?: boolean;

  @Field(() => PublicDatasetInput, { nullable: true, description: 'PUBLIC evaluation data: accuracy reported as a plain number, not charged.' })
  publicEvaluation?: PublicDatasetInput;

  @Field(() => PrivateEvaluationInput, { nullable: true, description: 'Private held-out evaluation: a noisy count, charged (included in targetEpsilon).' })
  privateEvaluation?: PrivateEvaluationInput;

  @Field(() => String, { nullable: true, description: 'Name of the resulting model (versions increase per name).' })
  modelName?: string;

  @Field(() => String, { nullable: true })
  idempotencyKey?: string;
}

@ObjectType('FinetuneJob')
export class FinetuneJobObject {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  datasetId: string;

  @Field(() => ID)
  reservationId: string;

  @Field(() => FinetuneJobStatus)
  status: FinetuneJobStatus;

  @Field(() => FinetuneMethodEnum)
  method: string;

  @Field()
  modelName: string;

  @Field()
  backbone: string;

  @Field()
  featureLayer: string;

  @Field(() => Int)
  inputSize: number;

  @Field(() => Float)
  noiseMultiplier: number;

  @Field(() => Float)
  delta: number;

  @Field(() => Float, { nullable: true })
  targetEpsilon: number | null;

  @Field(() => Float, { description: 'Epsilon of this job\'s releases on their own.' })
  epsilon: number;

  @Field(() => [PrivacyEventObject])
  events: PrivacyEventObject[];

  @Field(() => Float, { description: '0 to 1.' })
  progress: number;

  @Field()
  stage: string;

  @Field(() => String, { nullable: true })
  error: string | null;

  @Field(() => String, { nullable: true })
  errorCode: string | null;

  @Field({ description: 'Timings in milliseconds, as JSON text.' })
  timings: string;

  @Field(() => ID, { nullable: true })
  modelId: string | null;

  @Field()
  replayed: boolean;

  @Field()
  createdAt: Date;

  @Field(() => Date, { nullable: true })
  startedAt: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt: Date | null;
}

@ObjectType()
export class FinetuneJobConnection extends Connection(FinetuneJobObject, 'FinetuneJob') {}

export const RequestFinetuneResult = createUnionType({
  name: 'RequestFinetuneResult',
  types: () => [FinetuneJobObject, InsufficientBudgetErrorObject, ValidationError] as const,
  resolveType: (v) => (v instanceof ValidationError ? ValidationError : v instanceof InsufficientBudgetErrorObject ? InsufficientBudgetErrorObject : FinetuneJobObject),
});

@InputType()
export class CancelFinetuneInput {
  @Field(() => ID)
  jobId: string;
}
