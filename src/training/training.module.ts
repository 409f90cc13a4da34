import { Module } from '@nestjs/common';
import { DatasetsModule } from '../modules/datasets/datasets.module';
import { BackbonesResolver } from './backbones/backbones.resolver';
import { BackbonesService } from './backbones/backbones.service';
import { FinetuneJobsService } from './jobs/finetune-jobs.service';
import { FinetuneWorker } from './jobs/finetune-worker.service';
import { FinetuneJobFieldsResolver, FinetuneResolver } from './jobs/finetune.resolver';

/** Backbones, finetune requests and the job worker. */
@Module({
  imports: [DatasetsModule],
  providers: [BackbonesService, BackbonesResolver, FinetuneJobsService, FinetuneWorker, FinetuneResolver, FinetuneJobFieldsResolver],
  exports: [BackbonesService],
})
export class TrainingModule {}
