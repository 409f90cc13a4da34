/**
 * Deploy, undeploy and aliases. Every change is one transaction in PostgreSQL (the trigger bumps the
 * serving state version there), after which this replica refreshes at once and the others within
 * SERVING_SYNC_MS. A model is loaded and warmed up on this replica before its deployment is written, so a
 * model that cannot run is refused instead of deployed.
 */
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { BadInputError, ConflictError, ForbiddenError } from '../../common/errors/domain-errors';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { DatasetsService } from '../../modules/datasets/datasets.service';
import { isValidAlias, MODEL_NAME_PATTERN } from '../models/model-ref';
import { TrainedModel } from '../models/model.entity';
import { ModelsService } from '../models/models.service';
import { ModelNotDeployedError, ModelNotFoundError } from '../serving.errors';
import { ServingRegistry } from './serving-registry.service';

export interface AliasChange {
  name: string;
  alias: string;
  model: TrainedModel;
  previousModelId: string | null;
  updatedAt: Date;
}

function rowsOf<T>(result: unknown): T[] {
  // DELETE/UPDATE ... RETURNING through TypeORM's query() yields [rows, count].
  return (Array.isArray(result) && Array.isArray(result[0]) ? result[0] : result) as T[];
}

@Injectable()
export class DeploymentsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly models: ModelsService,
    private readonly datasets: DatasetsService,
    private readonly registry: ServingRegistry,
  ) {}

  /** Admins manage every deployment; ml_engineers those of models trained on datasets granted to them. */
  private async assertCanManage(principal: Principal, model: Pick<TrainedModel, 'datasetId' | 'name'>): Promise<void> {
    if (principal.role === Role.ADMIN) return;
    await this.datasets.assertCanTrain(principal, model.datasetId).catch(() => {
      throw new ForbiddenError(`this key may not manage deployments of model ${model.name}`);
    });
  }

  async deploy(principal: Principal, ref: string): Promise<TrainedModel> {
    const model = await this.models.resolve(ref);
    await this.assertCanManage(principal, model);
    if (!this.registry.enabled) throw new ForbiddenError('this process does not serve models (PRIVATUNE_ROLE=worker)');
    await this.registry.prepare({ id: model.id, name: model.name, version: model.version, deployedAt: new Date() });
    await this.db.query('INSERT INTO model_deployments (model_id, deployed_by) VALUES ($1, $2) ON CONFLICT DO NOTHING', [model.id, principal.keyId]);
    await this.registry.refresh();
    return model;
  }

  async undeploy(principal: Principal, ref: string): Promise<TrainedModel> {
    const model = await this.models.resolve(ref);
    await this.assertCanManage(principal, model);
    await this.db.transaction(async (tx) => {
      const aliases: { alias: string }[] = await tx.query('SELECT alias FROM model_aliases WHERE model_id = $1 ORDER BY alias FOR UPDATE', [model.id]);
      if (aliases.length) {
        const names = aliases.map((a) => `${model.name}@${a.alias}`);
        throw new ConflictError(`model ${model.name}@${model.version} is what ${names.join(', ')} point${names.length === 1 ? 's' : ''} at: move or remove ${names.length === 1 ? 'that alias' : 'those aliases'} first`, { aliases: names });
      }
      const deleted = rowsOf(await tx.query('DELETE FROM model_deployments WHERE model_id = $1 RETURNING model_id', [model.id]));
      if (deleted.length === 0) throw new ModelNotDeployedError(`model ${model.name}@${model.version} is not deployed`);
    });
    await this.registry.refresh();
    return model;
  }

  /** Points name@alias at a deployed version of that name, atomically (one row, one transaction). */
  async setAlias(principal: Principal, ref: string, alias: string): Promise<AliasChange> {
    const a = (alias ?? '').trim();
    if (!isValidAlias(a)) {
      throw new BadInputError('alias must be lower-case letters, digits, _ or -, start with a letter, and not look like a version (v<digits>)', { field: 'alias', reason: 'INVALID_ALIAS' });
    }
    const model = await this.models.resolve(ref);
    await this.assertCanManage(principal, model);
    const change = await this.db.transaction(async (tx) => {
      // FOR SHARE keeps the deployment from being removed until the alias is written.
      const deployed = await tx.query('SELECT 1 FROM model_deployments WHERE model_id = $1 FOR SHARE', [model.id]);
      if (deployed.length === 0) throw new ModelNotDeployedError(`model ${model.name}@${model.version} is not deployed: deploy it before pointing ${model.name}@${a} at it`);
      const previous: { model_id: string }[] = await tx.query('SELECT model_id FROM model_aliases WHERE model_name = $1 AND alias = $2 FOR UPDATE', [model.name, a]);
      const [row]: { updated_at: Date }[] = await tx.query(
        `INSERT INTO model_aliases (model_name, alias, model_id, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (model_name, alias) DO UPDATE SET model_id = EXCLUDED.model_id, updated_by = EXCLUDED.updated_by, updated_at = now()
         RETURNING updated_at`,
        [model.name, a, model.id, principal.keyId],
      );
      return { name: model.name, alias: a, model, previousModelId: previous[0]?.model_id ?? null, updatedAt: row.updated_at };
    });
    await this.registry.refresh();
    return change;
  }

  async removeAlias(principal: Principal, name: string, alias: string): Promise<AliasChange> {
    if (!MODEL_NAME_PATTERN.test(name ?? '') || !isValidAlias(alias ?? '')) throw new ModelNotFoundError(`model ${name} has no alias ${alias}`);
    const target = await this.models.resolve({ kind: 'alias', name, alias, text: `${name}@${alias}` });
    await this.assertCanManage(principal, target);
    const deleted = rowsOf<{ model_id: string; updated_at: Date }>(
      await this.db.query('DELETE FROM model_aliases WHERE model_name = $1 AND alias = $2 RETURNING model_id, updated_at', [name, alias]),
    );
    if (deleted.length === 0) throw new ModelNotFoundError(`model ${name} has no alias ${alias}`);
    await this.registry.refresh();
    return { name, alias, model: target, previousModelId: deleted[0].model_id, updatedAt: new Date() };
  }
}
