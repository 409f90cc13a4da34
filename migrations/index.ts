/** Every migration, in order. Listed explicitly (not globbed) so that a build never misses or reorders one. */
import { ApiKeys1764300000000 } from './1764300000000-api-keys';
import { DatasetsLedger1764300100000 } from './1764300100000-datasets-ledger';
import { FinetuneJobsModels1764300200000 } from './1764300200000-finetune-jobs-models';
import { Serving1764300300000 } from './1764300300000-serving';
import { ApiKeyChanges1764300400000 } from './1764300400000-api-key-changes';

export const migrations = [ApiKeys1764300000000, DatasetsLedger1764300100000, FinetuneJobsModels1764300200000, Serving1764300300000, ApiKeyChanges1764300400000];
