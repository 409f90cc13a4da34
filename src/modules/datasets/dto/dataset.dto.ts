import { ArgsType, createUnionType, Field, Float, ID, InputType, Int, ObjectType } from '@nestjs/graphql';
import { Connection, PageArgs } from '../../../common/graphql/relay';
import { ValidationError } from '../../../common/graphql/payload-errors';
import { Dataset, DatasetFormat } from '../dataset.entity';

@ObjectType()
export class DatasetConnection extends Connection(Dataset, 'Dataset') {}

@ArgsType()
export class DatasetsArgs extends PageArgs {
  @Field(() => String, { nullable: true, description: 'Only datasets whose name contains this text (case-insensitive).' })
  nameContains?: string;
}

@InputType()
export class RegisterDatasetInput {
  @Field()
  name: string;

  @Field({ nullable: true })
  description?: string;

  @Field(() => DatasetFormat)
  format: DatasetFormat;

  @Field({ description: 'IDX: path prefix P of P-images-idx3-ubyte[.gz] and P-labels-idx1-ubyte[.gz], or their folder. IMAGE_FOLDER: the folder.' })
  location: string;

  @Field(() => [String], { nullable: true, description: 'Class names in label order; defaults to what the data shows.' })
  classNames?: string[];

  @Field(() => Int, { description: 'Number of examples n. Public metadata; must match the data.' })
  declaredSize: number;

  @Field(() => Float)
  epsilonLimit: number;

  @Field(() => Float, { description: 'Budget delta; should be well below 1/n.' })
  delta: number;

  @Field({ defaultValue: false, description: 'Accept a delta above 1/n.' })
  forceDelta: boolean;
}

export const RegisterDatasetResult = createUnionType({
  name: 'RegisterDatasetResult',
  types: () => [Dataset, ValidationError] as const,
  resolveType: (v) => (v instanceof ValidationError ? ValidationError : Dataset),
});

@InputType()
export class SetDatasetBudgetInput {
  @Field(() => ID)
  datasetId: string;

  @Field(() => Float, { description: 'New epsilon limit; never below what is spent and reserved.' })
  epsilonLimit: number;

  @Field({ description: 'Why: recorded in the ledger.' })
  reason: string;
}

export const SetDatasetBudgetResult = createUnionType({
  name: 'SetDatasetBudgetResult',
  types: () => [Dataset, ValidationError] as const,
  resolveType: (v) => (v instanceof ValidationError ? ValidationError : Dataset),
});

@InputType()
export class DatasetGrantInput {
  @Field(() => ID)
  datasetId: string;

  @Field(() => ID)
  apiKeyId: string;
}
