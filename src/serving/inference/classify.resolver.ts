import { Args, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { CurrentPrincipal, Roles } from '../../modules/auth/auth.decorators';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { ModelGuaranteeObject } from '../models/dto/model.dto';
import { ModelsService } from '../models/models.service';
import { ClassifyInput, ClassifyResultObject } from './dto/classify.dto';
import { InferenceService } from './inference.service';

@Resolver(() => ClassifyResultObject)
export class ClassifyResolver {
  constructor(
    private readonly inference: InferenceService,
    private readonly models: ModelsService,
  ) {}

  @Roles(Role.INFERENCE_CLIENT)
  @Query(() => ClassifyResultObject, {
    description:
      'Classifies images with a deployed model (inference_client keys granted the model name, or admin). Costs no privacy budget: ' +
      'inference is post-processing of a released DP model. Limits: SERVING_MAX_IMAGES images, SERVING_MAX_IMAGE_BYTES bytes and ' +
      'SERVING_MAX_IMAGE_PIXELS pixels per image (BAD_USER_INPUT); MODEL_NOT_FOUND, MODEL_NOT_DEPLOYED, MODEL_NOT_READY, OVERLOADED, TIMEOUT.',
  })
  async classify(@Args('input') input: ClassifyInput, @CurrentPrincipal() principal: Principal): Promise<ClassifyResultObject> {
    const out = await this.inference.classify(principal, input);
    return Object.assign(new ClassifyResultObject(), {
      modelId: out.model.id,
      modelName: out.model.name,
      modelVersion: out.model.version,
      predictions: out.predictions.map((labels, index) => ({ index, labels })),
      privacyCost: 0,
      budgetCharged: false,
    });
  }

  @ResolveField(() => ModelGuaranteeObject, { description: 'The guarantee the model was released under; it holds for any number of queries.' })
  async guarantee(@Parent() r: ClassifyResultObject): Promise<ModelGuaranteeObject> {
    const m = await this.models.resolve({ kind: 'id', id: r.modelId, text: r.modelId });
    return this.models.toObject(m, null).guarantee;
  }
}
