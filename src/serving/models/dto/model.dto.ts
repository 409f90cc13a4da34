import { ArgsType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Connection, PageArgs } from '../../../common/graphql/relay';
import { PrivacyEventObject } from '../../../modules/privacy/dto/privacy-event.dto';

export enum ModelServingStatus {
  NOT_DEPLOYED = 'NOT_DEPLOYED',
  WARMING = 'WARMING',
  READY = 'READY',
  FAILED = 'FAILED',
}
registerEnumType(ModelServingStatus, {
  name: 'ModelServingStatus',
  description: 'NOT_DEPLOYED; WARMING: deployed, loading and running its warm-up inference on this replica; READY: serving; FAILED: deployed but this replica cannot load it (see error).',
});

@ObjectType({ description: 'The differential-privacy guarantee the model was released under (its whole training, not per query).' })
export class ModelGuaranteeObject {
  @Field(() => Float)
  epsilon: number;

  @Field(() => Float)
  delta: number;

  @Field({ description: 'Accountant that composed the events into (epsilon, delta).' })
  accountant: string;

  @Field(() => Float)
  noiseMultiplier: number;

  @Field(() => Float, { description: 'Per-example L2 clip norm.' })
  clipNorm: number;

  @Field({ description: 'LEAST_SQUARES, SINGLE_STEP or DP_SGD.' })
  method: string;

  @Field({ description: 'Noise source: csprng for every real release.' })
  noiseKind: string;

  @Field(() => [PrivacyEventObject], { description: 'Exactly the noisy releases performed, as charged to the dataset\'s ledger.' })
  events: PrivacyEventObject[];
}

@ObjectType('ModelDatasetProvenance')
export class ModelDatasetProvenanceObject {
  @Field(() => ID)
  id: string;

  @Field(() => String, { nullable: true })
  name: string | null;

  @Field({ description: 'sha256 of the data the model was trained on.' })
  fingerprint: string;

  @Field(() => Int)
  declaredSize: number;
}

@ObjectType('ModelBackboneProvenance')
export class ModelBackboneProvenanceObject {
  @Field()
  id: string;

  @Field()
  name: string;

  @Field()
  featureLayer: string;

  @Field(() => Int)
  inputSize: number;

  @Field(() => Int)
  featureDim: number;

  @Field({ description: 'Public data the backbone weights were pretrained on.' })
  pretrainedOn: string;
}

@ObjectType('ModelProvenance')
export class ModelProvenanceObject {
  @Field(() => ModelDatasetProvenanceObject)
  dataset: ModelDatasetProvenanceObject;

  @Field(() => ModelBackboneProvenanceObject)
  backbone: ModelBackboneProvenanceObject;

  @Field(() => ID, { nullable: true, description: 'The finetune job that produced the model.' })
  jobId: string | null;
}

@ObjectType('ModelDeployment')
export class ModelDeploymentObject {
  @Field()
  deployed: boolean;

  @Field(() => Date, { nullable: true })
  deployedAt: Date | null;

  @Field(() => ModelServingStatus, { description: 'Status on the replica that answered.' })
  status: ModelServingStatus;

  @Field(() => String, { nullable: true })
  error: string | null;
}

@ObjectType('Model', { description: 'An immutable trained model version: a DP linear head on a frozen public backbone.' })
export class ModelObject {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field(() => Int, { description: 'Versions of one name start at 1 and increase; a version never changes.' })
  version: number;

  @Field({ description: 'name@version, usable wherever a model is addressed.' })
  ref: string;

  @Field(() => [String])
  classNames: string[];

  @Field(() => ModelGuaranteeObject)
  guarantee: ModelGuaranteeObject;

  @Field(() => ModelProvenanceObject)
  provenance: ModelProvenanceObject;

  @Field(() => Float, { nullable: true, description: 'Accuracy on the public evaluation data given at training (free), if any.' })
  publicAccuracy: number | null;

  @Field(() => String, { nullable: true, description: 'Evaluation as JSON text (public: free; private: noisy count charged with the job).' })
  evaluation: string | null;

  @Field()
  createdAt: Date;
}

@ObjectType()
export class ModelConnection extends Connection(ModelObject, 'Model') {}

@ArgsType()
export class ModelsArgs extends PageArgs {
  @Field(() => ID, { nullable: true, description: 'Only models trained on this dataset.' })
  dataset?: string;

  @Field(() => String, { nullable: true, description: 'Only models on this backbone id (e.g. mobilenet_v2).' })
  backbone?: string;

  @Field(() => String, { nullable: true, description: 'Only versions of this model name.' })
  name?: string;

  @Field(() => Boolean, { nullable: true, description: 'Only deployed (true) or undeployed (false) models.' })
  deployed?: boolean;
}

@InputType()
export class ModelRefInput {
  @Field({ description: 'The model: id, name@version, name@alias, or name (deploy: highest version).' })
  model: string;
}

@InputType()
export class SetModelAliasInput {
  @Field({ description: 'The version the alias will point at: id or name@version (it must be deployed).' })
  model: string;

  @Field({ description: 'e.g. production or canary: lower-case letters, digits, _ -, starting with a letter (not v<digits>).' })
  alias: string;
}

@InputType()
export class RemoveModelAliasInput {
  @Field()
  name: string;

  @Field()
  alias: string;
}

@ObjectType('ModelAlias')
export class ModelAliasObject {
  @Field()
  name: string;

  @Field()
  alias: string;

  @Field({ description: 'name@alias' })
  ref: string;

  @Field(() => ModelObject)
  model: ModelObject;

  @Field(() => ID, { nullable: true, description: 'The version it pointed at before this change.' })
  previousModelId: string | null;

  @Field()
  updatedAt: Date;
}

@InputType()
export class ModelGrantInput {
  @Field({ description: 'The model NAME: the grant covers every version and alias of it, present and future.' })
  modelName: string;

  @Field(() => ID)
  apiKeyId: string;
}

@ObjectType('ModelGrant')
export class ModelGrantObject {
  @Field()
  modelName: string;

  @Field(() => ID)
  apiKeyId: string;

  @Field()
  createdAt: Date;
}
