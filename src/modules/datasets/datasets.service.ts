import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError } from '../../common/errors/domain-errors';
import { isUuid } from '../../common/uuid';
import { inspectDataset } from '../../training/data';
import { ApiKey } from '../auth/api-key.entity';
import { hasRole, Principal } from '../auth/principal';
import { Role } from '../auth/role';
import { LedgerService } from '../ledger/ledger.service';
import { DatasetGrant } from './dataset-grant.entity';
import { Dataset, DatasetFormat } from './dataset.entity';

export interface RegisterDatasetRequest {
  name: string;
  description?: string;
  format: DatasetFormat;
  location: string;
  classNames?: string[];
  declaredSize: number;
  epsilonLimit: number;
  delta: number;
  /** Accept delta above 1/n (documented risk: a mechanism may then leak whole examples with probability delta). */
  forceDelta?: boolean;
}

@Injectable()
export class DatasetsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly ledger: LedgerService,
  ) {}

  /**
   * Registers a dataset: the files must exist and parse, hold exactly the declared number of examples,
   * and their fingerprint pins the snapshot. The first ledger entry is written in the same transaction.
   */
  async register(req: RegisterDatasetRequest, principal: Principal): Promise<Dataset> {
    const name = req.name?.trim();
    if (!name || name.length > 200) throw new BadInputError('name must be 1 to 200 characters', { field: 'name' });
    if (!Number.isInteger(req.declaredSize) || req.declaredSize < 1) throw new BadInputError('declaredSize must be a positive integer', { field: 'declaredSize' });
    if (!Number.isFinite(req.epsilonLimit) || req.epsilonLimit <= 0) throw new BadInputError('epsilonLimit must be a positive finite number', { field: 'epsilonLimit' });
    if (!Number.isFinite(req.delta) || req.delta <= 0 || req.delta >= 1) throw new BadInputError('delta must be in (0, 1)', { field: 'delta' });
    if (req.delta > 1 / req.declaredSize && !req.forceDelta) {
      throw new BadInputError(
        `delta ${req.delta} is above 1/n = ${(1 / req.declaredSize).toExponential(3)}: with such a delta a mechanism may reveal an entire example ` +
          `with non-negligible probability. Choose delta well below 1/n, or set forceDelta to accept it explicitly.`,
        { field: 'delta' },
      );
    }
    if (!req.location?.trim()) throw new BadInputError('location is required', { field: 'location' });

    const info = await inspectDataset({ format: req.format, location: req.location }).catch((err: Error & { code?: string }) => {
      throw new BadInputError(`dataset files at ${req.location} cannot be used: ${err.message}`, { field: 'location', reason: err.code ?? 'DATASET_INVALID' });
    });
    if (info.count !== req.declaredSize) {
      throw new BadInputError(`declaredSize ${req.declaredSize} does not match the ${info.count} examples found at ${req.location}`, { field: 'declaredSize' });
    }
    const classNames = req.classNames?.length ? req.classNames.map((c) => c.trim()) : info.classNames;
    if (classNames.length < info.classNames.length) {
      throw new BadInputError(`classNames lists ${classNames.length} classes but the data has ${info.classNames.length}`, { field: 'classNames' });
    }
    if (req.format === DatasetFormat.IMAGE_FOLDER && req.classNames?.length && classNames.join('\n') !== info.classNames.join('\n')) {
      throw new BadInputError(`classNames must be the class folder names in sorted order: ${info.classNames.join(', ')}`, { field: 'classNames' });
    }
    if (new Set(classNames).size !== classNames.length || classNames.some((c) => !c)) {
      throw new BadInputError('classNames must be distinct and non-empty', { field: 'classNames' });
    }

    return this.db.transaction(async (tx) => {
      const existing = await tx.findOne(Dataset, { where: { name } });
      if (existing) throw new ConflictError(`a dataset named ${name} already exists`);
      const dataset = tx.create(Dataset, {
        name,
        description: req.description?.trim() ?? '',
        format: req.format,
        location: req.location,
        classNames,
        declaredSize: req.declaredSize,
        privacyUnit: 'example',
        fingerprint: info.fingerprint,
        epsilonLimit: req.epsilonLimit,
        delta: req.delta,
        deltaForced: req.delta > 1 / req.declaredSize,
        createdBy: principal.keyId,
        createdAt: new Date(Math.floor(Date.now())),
      });
      await tx.insert(Dataset, dataset);
      await this.ledger.recordRegistration(tx, dataset, principal);
      return dataset;
    });
  }

  async get(id: string): Promise<Dataset> {
    const found = isUuid(id) ? await this.db.getRepository(Dataset).findOne({ where: { id } }) : null;
    if (!found) throw new NotFoundError(`dataset ${id} not found`);
    return found;
  }

  /** Datasets the principal may read, in creation order, after a (createdAt, id) position. */
  async list(principal: Principal, opts: { first: number; after?: { createdAt: Date; id: string }; nameContains?: string }): Promise<Dataset[]> {
    const qb = this.db.getRepository(Dataset).createQueryBuilder('d').orderBy('d.created_at', 'ASC').addOrderBy('d.id', 'ASC').limit(opts.first);
    if (opts.after) qb.andWhere('(d.created_at, d.id) > (:createdAt, :id)', opts.after);
    if (opts.nameContains) qb.andWhere(`d.name ILIKE :pattern ESCAPE '\\'`, { pattern: `%${opts.nameContains.replace(/[\\%_]/g, (c) => `\\${c}`)}%` });
    if (!this.readsEverything(principal)) {
      qb.andWhere('EXISTS (SELECT 1 FROM dataset_grants g WHERE g.dataset_id = d.id AND g.api_key_id = :key)', { key: principal.keyId });
    }
    return qb.getMany();
  }

  /** Admins, stewards and auditors read every dataset; others only those granted to their key. */
  async assertCanRead(principal: Principal, datasetId: string): Promise<Dataset> {
    const dataset = await this.get(datasetId);
    if (this.readsEverything(principal) || (await this.isGranted(principal, datasetId))) return dataset;
    throw new ForbiddenError(`this key has no access to dataset ${datasetId}`);
  }

  /** Spending on a dataset (finetunes): admin, or an ml_engineer key granted the dataset. */
  async assertCanTrain(principal: Principal, datasetId: string): Promise<Dataset> {
    const dataset = await this.get(datasetId);
    if (principal.role === Role.ADMIN) return dataset;
    if (principal.role === Role.ML_ENGINEER && (await this.isGranted(principal, datasetId))) return dataset;
    throw new ForbiddenError(`this key may not train on dataset ${datasetId}`);
  }

  async grant(datasetId: string, apiKeyId: string, by: Principal): Promise<void> {
    await this.get(datasetId);
    const key = isUuid(apiKeyId) ? await this.db.getRepository(ApiKey).findOne({ where: { id: apiKeyId } }) : null;
    if (!key || key.revokedAt) throw new NotFoundError(`API key ${apiKeyId} not found`);
    await this.db.createQueryBuilder().insert().into(DatasetGrant).values({ datasetId, apiKeyId, grantedBy: by.keyId }).orIgnore().execute();
  }

  async revokeGrant(datasetId: string, apiKeyId: string): Promise<void> {
    await this.db.getRepository(DatasetGrant).delete({ datasetId, apiKeyId });
  }

  private readsEverything(principal: Principal): boolean {
    return hasRole(principal, [Role.DATA_STEWARD, Role.AUDITOR]);
  }

  private async isGranted(principal: Principal, datasetId: string): Promise<boolean> {
    return (await this.db.getRepository(DatasetGrant).count({ where: { datasetId, apiKeyId: principal.keyId } })) > 0;
  }
}
