import { Args, createUnionType, Mutation, Query, Resolver } from '@nestjs/graphql';
import { asPayload, ValidationError } from '../../common/graphql/payload-errors';
import { CurrentPrincipal, Roles } from '../../modules/auth/auth.decorators';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import type { BackboneSpec } from './types';
import { BackbonesService } from './backbones.service';
import { BackboneObject, RegisterBackboneInput } from './dto/backbone.dto';

export const RegisterBackboneResult = createUnionType({
  name: 'RegisterBackboneResult',
  types: () => [BackboneObject, ValidationError] as const,
  resolveType: (v) => (v instanceof ValidationError ? ValidationError : BackboneObject),
});

export function toBackboneObject(b: BackboneSpec): BackboneObject {
  return Object.assign(new BackboneObject(), {
    id: b.id,
    name: b.name,
    description: b.description,
    source: b.source.kind,
    featureLayers: b.featureLayers.map((l) => ({ name: l.name, dim: l.dim, defaultSize: l.defaultSize })),
    defaultFeatureLayer: b.defaultFeatureLayer,
    minInputSize: b.input.minSize,
    maxInputSize: b.input.maxSize,
    origin: b.provenance.origin,
    pretrainedOn: b.provenance.trainingData,
  });
}

export function toBackboneSpec(i: RegisterBackboneInput): BackboneSpec {
  return {
    id: i.id,
    name: i.name,
    description: i.description,
    source: i.format === 'onnx' ? { kind: 'onnx', path: i.path } : { kind: i.format, modelJsonPath: i.path },
    input: { layout: i.layout, minSize: i.minSize, maxSize: i.maxSize, defaultSize: i.defaultSize },
    preprocessing: { scale: i.scale, mean: i.mean as [number, number, number], std: i.std as [number, number, number], resize: 'bilinear', alignCorners: i.alignCorners },
    featureLayers: i.featureLayers.map((l) => ({ name: l.name, node: l.node, dim: l.dim, pooling: l.pooling, defaultSize: l.defaultSize })),
    defaultFeatureLayer: i.defaultFeatureLayer,
    provenance: { origin: i.origin, trainingData: i.pretrainedOn, ...(i.license ? { license: i.license } : {}) },
  };
}

@Resolver(() => BackboneObject)
export class BackbonesResolver {
  constructor(private readonly backbonesService: BackbonesService) {}

  @Query(() => [BackboneObject], { description: 'Backbones available for finetunes: the built-in ones, then registered ones.' })
  async backbones(): Promise<BackboneObject[]> {
    return (await this.backbonesService.list()).map(toBackboneObject);
  }

  @Roles(Role.ADMIN)
  @Mutation(() => RegisterBackboneResult, { description: 'Registers a public-pretrained backbone (admin). It is loaded once to prove it runs.' })
  registerBackbone(@Args('input') input: RegisterBackboneInput, @CurrentPrincipal() principal: Principal): Promise<typeof RegisterBackboneResult> {
    return asPayload(async () => toBackboneObject(await this.backbonesService.register(toBackboneSpec(input), principal.keyId))) as Promise<typeof RegisterBackboneResult>;
  }
}
