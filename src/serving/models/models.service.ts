/** The model registry: immutable model versions, who may see them, and model grants. */
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ForbiddenError, NotFoundError } from '../../common/errors/domain-errors';
import { isUuid } from '../../common/uuid';
import { ApiKey } from '../../modules/auth/api-key.entity';
import { hasRole, Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { toEventObject } from '../../modules/privacy/dto/privacy-event.dto';
import { ModelNotFoundError } from '../serving.errors';
import { ModelObject } from './dto/model.dto';
import { ModelGrant } from './model-grant.entity';
import { MODEL_NAME_PATTERN, ModelRef, parseModelRef } from './model-ref';
import { TrainedModel } from './model.entity';

/** Every column but the head's weights and bias (listing never needs them). */
const SUMMARY_COLUMNS: (keyof TrainedModel)[] = ['id', 'name', 'version', 'datasetId', 'jobId', 'backboneId', 'backbone', 'featurePreprocessing', 'classNames', 'dim', 'guarantee', 'evaluation', 'createdAt'];

export interface ListModelsOptions {
  first: number;
  after?: { createdAt: Date; id: string };
  datasetId?: string;
  backbone?: string;
  name?: string;
  deployed?: boolean;
}

@Injectable()
export class ModelsService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Admins, auditors and data stewards read every model; ml_engineers those of granted datasets; inference clients granted names. */
  private readsAll(principal: Principal): boolean {
    return hasRole(principal, [Role.AUDITOR, Role.DATA_STEWARD]);
  }

  async list(principal: Principal, opts: ListModelsOptions): Promise<TrainedModel[]> {
    const qb = this.db
      .getRepository(TrainedModel)
      .createQueryBuilder('m')
      .select(SUMMARY_COLUMNS.map((c) => `m.${c}`))
      .orderBy('m.created_at', 'ASC')
      .addOrderBy('m.id', 'ASC')
      .limit(opts.first);
    if (opts.after) qb.andWhere('(m.created_at, m.id) > (:createdAt, :id)', opts.after);
    if (opts.datasetId !== undefined) {
      if (!isUuid(opts.datasetId)) return [];
      qb.andWhere('m.dataset_id = :datasetId', { datasetId: opts.datasetId });
    }
    if (opts.backbone !== undefined) qb.andWhere('m.backbone_id = :backbone', { backbone: opts.backbone });
    if (opts.name !== undefined) qb.andWhere('m.name = :name', { name: opts.name });
    if (opts.deployed !== undefined) qb.andWhere(`${opts.deployed ? '' : 'NOT '}EXISTS (SELECT 1 FROM model_deployments md WHERE md.model_id = m.id)`);
    this.restrict(qb, principal);
    return qb.getMany();
  }

  private restrict(qb: ReturnType<ReturnType<DataSource['getRepository']>['createQueryBuilder']>, principal: Principal): void {
    if (this.readsAll(principal)) return;
    if (principal.role === Role.ML_ENGINEER) {
      qb.andWhere('EXISTS (SELECT 1 FROM dataset_grants g WHERE g.dataset_id = m.dataset_id AND g.api_key_id = :key)', { key: principal.keyId });
    } else if (principal.role === Role.INFERENCE_CLIENT) {
      qb.andWhere('EXISTS (SELECT 1 FROM model_grants mg WHERE mg.model_name = m.name AND mg.api_key_id = :key)', { key: principal.keyId });
    } else {
      qb.andWhere('false');
    }
  }

  async canRead(principal: Principal, model: Pick<TrainedModel, 'name' | 'datasetId'>): Promise<boolean> {
    if (this.readsAll(principal)) return true;
    if (principal.role === Role.ML_ENGINEER) {
      return (await this.db.query('SELECT 1 FROM dataset_grants WHERE dataset_id = $1 AND api_key_id = $2', [model.datasetId, principal.keyId])).length > 0;
    }
    if (principal.role === Role.INFERENCE_CLIENT) {
      return (await this.db.query('SELECT 1 FROM model_grants WHERE model_name = $1 AND api_key_id = $2', [model.name, principal.keyId])).length > 0;
    }
    return false;
  }

  /**
   * The model version a reference names, deployed or not: id, name@version, name@alias, or a bare name
   * (its highest version). Throws MODEL_NOT_FOUND.
   */
  async resolve(ref: ModelRef | string, opts: { withWeights?: boolean } = {}): Promise<TrainedModel> {
    const r = typeof ref === 'string' ? parseModelRef(ref) : ref;
    const qb = this.db.getRepository(TrainedModel).createQueryBuilder('m');
    if (!opts.withWeights) qb.select(SUMMARY_COLUMNS.map((c) => `m.${c}`));
    switch (r.kind) {
      case 'id':
        qb.where('m.id = :id', { id: r.id });
        break;
      case 'version':
        qb.where('m.name = :name AND m.version = :version', { name: r.name, version: r.version });
        break;
      case 'alias':
        qb.where('m.id = (SELECT a.model_id FROM model_aliases a WHERE a.model_name = :name AND a.alias = :alias)', { name: r.name, alias: r.alias });
        break;
      case 'latest':
        qb.where('m.name = :name', { name: r.name }).orderBy('m.version', 'DESC').limit(1);
        break;
    }
    const found = await qb.getOne();
    if (!found) throw new ModelNotFoundError(`model ${r.text} not found`, { model: r.text });
    return found;
  }

  /** A model the principal may read (FORBIDDEN otherwise). */
  async getReadable(principal: Principal, ref: string): Promise<TrainedModel> {
    const model = await this.resolve(ref);
    if (!(await this.canRead(principal, model))) throw new ForbiddenError(`this key may not read model ${model.name}`);
    return model;
  }

  async datasetNames(ids: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return new Map();
    const rows: { id: string; name: string }[] = await this.db.query('SELECT id, name FROM datasets WHERE id = ANY($1::uuid[])', [unique]);
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  toObject(m: TrainedModel, datasetName: string | null): ModelObject {
    const g = m.guarantee;
    const publicEval = (m.evaluation as { public?: { accuracy?: unknown } } | null)?.public;
    return Object.assign(new ModelObject(), {
      id: m.id,
      name: m.name,
      version: m.version,
      ref: `${m.name}@${m.version}`,
      classNames: m.classNames,
      guarantee: {
        epsilon: g.epsilon,
        delta: g.delta,
        accountant: g.accountant,
        noiseMultiplier: g.noiseMultiplier,
        clipNorm: g.clipNorm,
        method: g.method,
        noiseKind: g.noiseKind,
        events: (g.events ?? []).map(toEventObject),
      },
      provenance: {
        dataset: { id: m.datasetId, name: datasetName, fingerprint: g.datasetFingerprint, declaredSize: g.declaredSize },
        backbone: { ...m.backbone },
        jobId: m.jobId,
      },
      publicAccuracy: typeof publicEval?.accuracy === 'number' ? publicEval.accuracy : null,
      evaluation: m.evaluation ? JSON.stringify(m.evaluation) : null,
      createdAt: m.createdAt,
    });
  }

  // ---- grants -----------------------------------------------------------------------------------

  async grant(modelName: string, apiKeyId: string, by: Principal): Promise<ModelGrant> {
    const name = (modelName ?? '').trim();
    if (!MODEL_NAME_PATTERN.test(name) || (await this.db.query('SELECT 1 FROM models WHERE name = $1 LIMIT 1', [name])).length === 0) {
      throw new ModelNotFoundError(`no model named ${modelName}`, { model: modelName });
    }
    const key = isUuid(apiKeyId) ? await this.db.getRepository(ApiKey).findOne({ where: { id: apiKeyId } }) : null;
    if (!key || key.revokedAt) throw new NotFoundError(`API key ${apiKeyId} not found`);
    await this.db.query('INSERT INTO model_grants (model_name, api_key_id, granted_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [name, key.id, by.keyId]);
    return this.db.getRepository(ModelGrant).findOneByOrFail({ modelName: name, apiKeyId: key.id });
  }

  async revokeGrant(modelName: string, apiKeyId: string): Promise<boolean> {
    if (!isUuid(apiKeyId)) return false;
    const rows = await this.db.query('DELETE FROM model_grants WHERE model_name = $1 AND api_key_id = $2 RETURNING 1', [modelName, apiKeyId]);
    return (Array.isArray(rows[0]) ? rows[0] : rows).length > 0;
  }
}
