import { Module } from '@nestjs/common';
import { DatasetsModule } from '../modules/datasets/datasets.module';
import { TrainingModule } from '../training/training.module';
import { DeploymentsService } from './deployments/deployments.service';
import { ServingRegistry } from './deployments/serving-registry.service';
import { ClassifyResolver } from './inference/classify.resolver';
import { InferenceService } from './inference/inference.service';
import { ModelsResolver } from './models/models.resolver';
import { ModelsService } from './models/models.service';

/** Model registry, deployments and aliases (followed by every API replica), and batched inference. */
@Module({
  imports: [DatasetsModule, TrainingModule],
  providers: [ModelsService, DeploymentsService, ServingRegistry, InferenceService, ModelsResolver, ClassifyResolver],
  exports: [ModelsService, ServingRegistry, InferenceService],
})
export class ServingModule {}
