import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';

export enum BackboneFormat {
  ONNX = 'onnx',
  TFJS_LAYERS = 'tfjs-layers',
  TFJS_GRAPH = 'tfjs-graph',
}
registerEnumType(BackboneFormat, { name: 'BackboneFormat', description: 'An ONNX file, or a TF.js model.json with its weight shards beside it.' });

export enum ChannelLayout {
  NHWC = 'NHWC',
  NCHW = 'NCHW',
}
registerEnumType(ChannelLayout, { name: 'ChannelLayout' });

export enum FeaturePooling {
  GLOBAL_AVG = 'global-avg',
  NONE = 'none',
}
registerEnumType(FeaturePooling, { name: 'FeaturePooling', description: 'GLOBAL_AVG: spatial mean of a rank-4 output; NONE: the node already gives a vector.' });

@ObjectType('FeatureLayer')
export class FeatureLayerObject {
  @Field()
  name: string;

  @Field(() => Int)
  dim: number;

  @Field(() => Int)
  defaultSize: number;
}

@ObjectType('Backbone')
export class BackboneObject {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field()
  description: string;

  @Field()
  source: string;

  @Field(() => [FeatureLayerObject])
  featureLayers: FeatureLayerObject[];

  @Field()
  defaultFeatureLayer: string;

  @Field(() => Int)
  minInputSize: number;

  @Field(() => Int)
  maxInputSize: number;

  @Field({ description: 'Where the weights come from.' })
  origin: string;

  @Field({ description: 'Public data the weights were trained on.' })
  pretrainedOn: string;
}

@InputType()
export class FeatureLayerInput {
  @Field({ description: 'Name callers use as featureLayer.' })
  name: string;

  @Field({ description: 'Graph output (ONNX), node (TF.js graph) or layer name (TF.js layers) that gives the features.' })
  node: string;

  @Field(() => Int)
  dim: number;

  @Field(() => FeaturePooling, { defaultValue: FeaturePooling.NONE })
  pooling: FeaturePooling;

  @Field(() => Int)
  defaultSize: number;
}

@InputType()
export class RegisterBackboneInput {
  @Field({ description: 'Lower-case id: letters, digits, _ . -' })
  id: string;

  @Field()
  name: string;

  @Field({ defaultValue: '' })
  description: string;

  @Field(() => BackboneFormat)
  format: BackboneFormat;

  @Field({ description: 'Path of the .onnx file or of model.json, on the servers that run jobs and inference.' })
  path: string;

  @Field(() => ChannelLayout, { defaultValue: ChannelLayout.NHWC })
  layout: ChannelLayout;

  @Field(() => Int)
  minSize: number;

  @Field(() => Int)
  maxSize: number;

  @Field(() => Int)
  defaultSize: number;

  @Field(() => Float, { description: 'x = (pixel * scale - mean[c]) / std[c], pixel in 0..255, RGB.' })
  scale: number;

  @Field(() => [Float], { defaultValue: [0, 0, 0] })
  mean: number[];

  @Field(() => [Float], { defaultValue: [1, 1, 1] })
  std: number[];

  @Field({ defaultValue: false, description: 'Bilinear resize with align_corners.' })
  alignCorners: boolean;

  @Field(() => [FeatureLayerInput])
  featureLayers: FeatureLayerInput[];

  @Field()
  defaultFeatureLayer: string;

  @Field({ description: 'Where the weights come from (paper, project, file).' })
  origin: string;

  @Field({ description: 'The PUBLIC data the weights were trained on.' })
  pretrainedOn: string;

  @Field(() => String, { nullable: true })
  license?: string;
}
