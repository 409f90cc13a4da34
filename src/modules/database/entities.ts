/** Every TypeORM entity of the platform. */
import { ApiKey } from '../auth/api-key.entity';
import { DatasetGrant } from '../datasets/dataset-grant.entity';
import { Dataset } from '../datasets/dataset.entity';
import { LedgerEntry } from '../ledger/ledger-entry.entity';
import { Reservation } from '../ledger/reservation.entity';
import { ModelAlias } from '../../serving/deployments/model-alias.entity';
import { ModelDeployment } from '../../serving/deployments/model-deployment.entity';
import { TrainedModel } from '../../serving/models/model.entity';
import { ModelGrant } from '../../serving/models/model-grant.entity';
import { FinetuneJob } from '../../training/jobs/finetune-job.entity';

export const entities = [ApiKey, Dataset, DatasetGrant, LedgerEntry, Reservation, FinetuneJob, TrainedModel, ModelDeployment, ModelAlias, ModelGrant];
