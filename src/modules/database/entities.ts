/** Every TypeORM entity of the platform. */
import { ApiKey } from '../auth/api-key.entity';
import { DatasetGrant } from '../datasets/dataset-grant.entity';
import { Dataset } from '../datasets/dataset.entity';
import { LedgerEntry } from '../ledger/ledger-entry.entity';
import { Reservation } from '../ledger/reservation.entity';
import { TrainedModel } from '../../serving/models/model.entity';
import { FinetuneJob } from '../../training/jobs/finetune-job.entity';

export const entities = [ApiKey, Dataset, DatasetGrant, LedgerEntry, Reservation, FinetuneJob, TrainedModel];
