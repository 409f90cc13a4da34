/**
 * Backbone registry (built-ins from code, registered ones from the database) and a per-process cache of
 * loaded feature extractors, shared by the finetune worker and the serving module, and of the threads
 * that run their ONNX graphs for training extraction.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { BadInputError, ConflictError, NotFoundError } from '../../common/errors/domain-errors';
import { OnnxExtractorThread, onnxThreadConfig } from './engines/onnx-thread';
import { BackboneSpec, BUILTIN_BACKBONES, EngineChoice, FeatureExtractor, getBuiltinBackbone, initTensorBackend, loadBackbone, TensorBackendInfo, validateBackboneSpec } from '.';

@Injectable()
export class BackbonesService implements OnApplicationShutdown {
  private readonly logger = new Logger('Backbones');
  private readonly extractors = new Map<string, Promise<FeatureExtractor>>();
  private readonly extractionThreads = new Map<FeatureExtractor, OnnxExtractorThread | undefined>();
  private backendInfo: Promise<TensorBackendInfo> | undefined;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async list(): Promise<BackboneSpec[]> {
    const rows: { spec: BackboneSpec }[] = await this.db.query('SELECT spec FROM backbones ORDER BY created_at, id');
    return [...BUILTIN_BACKBONES, ...rows.map((r) => r.spec)];
  }

  async get(id: string): Promise<BackboneSpec> {
    const builtin = getBuiltinBackbone(id);
    if (builtin) return builtin;
    const [row] = await this.db.query('SELECT spec FROM backbones WHERE id = $1', [id]);
    if (!row) throw new NotFoundError(`backbone ${id} not found`);
    return row.spec as BackboneSpec;
  }

  /** Registers an admin-supplied backbone (TF.js model files or an ONNX file on the servers' disks). */
  async register(spec: BackboneSpec, createdBy: string): Promise<BackboneSpec> {
    try {
      validateBackboneSpec(spec);
    } catch (err) {
      throw new BadInputError((err as Error).message, { field: 'spec' });
    }
    if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(spec.id)) throw new BadInputError('id must be 1-64 lower-case letters, digits, _ . - (starting with a letter or digit)', { field: 'id' });
    if (getBuiltinBackbone(spec.id)) throw new ConflictError(`backbone ${spec.id} is built in`);
    // Loading it once proves the files exist and run before anyone trains on it.
    const fx = await loadBackbone(spec, { engine: this.engineFor(spec), artifactDir: this.artifactDir() }).catch((err: Error) => {
      throw new BadInputError(`backbone cannot be loaded: ${err.message}`, { field: 'spec' });
    });
    await fx.dispose();
    const inserted = await this.db.query('INSERT INTO backbones (id, spec, created_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id', [spec.id, JSON.stringify(spec), createdBy]);
    if (inserted.length === 0) throw new ConflictError(`backbone ${spec.id} already exists`);
    return spec;
  }

  /** BACKBONE_ENGINE where the backbone runs on both engines (Keras layers models); its only engine otherwise. */
  private engineFor(spec: BackboneSpec): EngineChoice {
    return spec.source.kind === 'onnx' || spec.source.kind === 'tfjs-graph' ? 'auto' : this.config.backboneEngine;
  }

  /** The tensor backend chosen at start (reported in health and metrics). */
  tensorBackend(): Promise<TensorBackendInfo> {
    this.backendInfo ??= initTensorBackend();
    return this.backendInfo;
  }

  /** A loaded extractor, shared within the process. */
  extractor(spec: BackboneSpec, featureLayer: string, inputSize: number): Promise<FeatureExtractor> {
    const key = `${spec.id}|${featureLayer}|${inputSize}`;
    let found = this.extractors.get(key);
    if (!found) {
      found = this.tensorBackend().then(() =>
        loadBackbone(spec, {
          engine: this.engineFor(spec),
          featureLayer,
          inputSize,
          artifactDir: this.artifactDir(),
          logger: (level, message, fields) => {
            const entry = { msg: message, ...fields };
            if (level === 'error') this.logger.error(entry);
            else if (level === 'warn') this.logger.warn(entry);
            else if (level === 'info') this.logger.log(entry);
            else this.logger.debug(entry);
          },
        }),
      );
      found.catch(() => this.extractors.delete(key));
      this.extractors.set(key, found);
    }
    return found;
  }

  /**
   * The extractor's ONNX graph in a worker thread with as many intra-op threads as the extractor, for
   * training extraction off the event loop; started by its first pass. Undefined for TF.js engines.
   * Its pool threads spin between layers only in worker processes: in an API process they would take
   * the cores from serving (spinning is worth 5-10% of extraction speed on 2 cores; bench:features).
   * In an API process the thread also runs below the priority of everything that serves requests
   * (WORKER_EXTRACTION_NICE, 19 by default, under the serving passes' SERVING_BACKBONE_NICE): the API and
   * its forward passes come first, and extraction takes what they leave.
   */
  extractionThread(fx: FeatureExtractor): OnnxExtractorThread | undefined {
    if (!this.extractionThreads.has(fx)) {
      const config = onnxThreadConfig(fx);
      const worker = this.config.role === 'worker';
      this.extractionThreads.set(fx, config && new OnnxExtractorThread({ ...config, spin: worker, nice: worker ? 0 : this.config.worker.extractionNice }));
    }
    return this.extractionThreads.get(fx);
  }

  artifactDir(): string {
    return join(this.config.artifactDir, 'backbones');
  }

  async onApplicationShutdown(): Promise<void> {
    for (const thread of this.extractionThreads.values()) await thread?.close().catch(() => undefined);
    this.extractionThreads.clear();
    for (const fx of this.extractors.values()) await fx.then((f) => f.dispose()).catch(() => undefined);
    this.extractors.clear();
  }
}
