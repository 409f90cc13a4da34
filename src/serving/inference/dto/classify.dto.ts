import { Field, Float, ID, InputType, Int, ObjectType } from '@nestjs/graphql';

@InputType({ description: 'One image: base64 of an encoded file (PNG, JPEG, WebP, GIF, TIFF), or of raw uint8 pixels when width, height and channels are given.' })
export class ClassifyImageInput {
  @Field({ description: 'Base64 (standard or URL-safe; a data: URL prefix is accepted).' })
  data: string;

  @Field(() => Int, { nullable: true, description: 'Raw pixels only: width.' })
  width?: number;

  @Field(() => Int, { nullable: true, description: 'Raw pixels only: height.' })
  height?: number;

  @Field(() => Int, { nullable: true, description: 'Raw pixels only: 1 (gray), 3 (RGB) or 4 (RGBA), interleaved, row-major.' })
  channels?: number;
}

@InputType()
export class ClassifyInput {
  @Field({ description: 'A deployed model: id, name@version, name@alias (e.g. fashion@production), or name (its highest deployed version).' })
  model: string;

  @Field(() => [ClassifyImageInput])
  images: ClassifyImageInput[];

  @Field(() => Int, { defaultValue: 5, description: 'Labels per image, most probable first (capped at the number of classes).' })
  topK: number;
}

@ObjectType('LabelProbability')
export class LabelProbabilityObject {
  @Field()
  label: string;

  @Field(() => Int)
  classIndex: number;

  @Field(() => Float)
  probability: number;
}

@ObjectType('ImageClassification')
export class ImageClassificationObject {
  @Field(() => Int, { description: 'Position of the image in the request.' })
  index: number;

  @Field(() => [LabelProbabilityObject])
  labels: LabelProbabilityObject[];
}

@ObjectType('ClassifyResult')
export class ClassifyResultObject {
  @Field(() => ID, { description: 'The model version that answered (what an alias resolved to).' })
  modelId: string;

  @Field()
  modelName: string;

  @Field(() => Int)
  modelVersion: number;

  @Field(() => [ImageClassificationObject])
  predictions: ImageClassificationObject[];

  @Field(() => Float, {
    description: 'Always 0: inference is post-processing of a model released under differential privacy. It costs no privacy budget and writes nothing to any ledger.',
  })
  privacyCost: number;

  @Field({ description: 'Always false: classification never charges a dataset\'s budget.' })
  budgetCharged: boolean;
}
