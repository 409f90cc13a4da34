/**
 * This replica's view of what is deployed, and the loaded models and per-backbone batchers that serve it.
 *
 * Deployment state lives in PostgreSQL (model_deployments, model_aliases, model_grants). A statement
 * trigger bumps `serving_state.version` on every change; each API replica polls that counter every
 * SERVING_SYNC_MS and, when it moved, reloads the whole state in one REPEATABLE READ snapshot and
 * reconciles: newly deployed models are loaded and warmed up (one inference through the real path)
 * before they count as ready; undeployed ones are dropped. Mutations made through this replica refresh it
 * at once. Requests are resolved against the in-memory snapshot, so classify costs no database query
 * beyond authentication.
 */
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { availableParallelism } from 'node:os';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ForbiddenError } from '../../common/errors/domain-errors';
import { ReadinessRegistry } from '../../modules/health/readiness.registry';
import { Principal } from '../../modules/auth/principal';
import { Role } from '../../modules/auth/role';
import { BackbonesService } from '../../training/backbones/backbones.service';
import { preprocessPass, type BackboneSpec, type FeatureExtractor, type PassImage } from '../../training/backbones';
import type { PassOutput } from '../../training/backbones/pass';
import { onnxThreadConfig } from '../../training/backbones/engines/onnx-thread';
import { BackbonePool, grayImage } from '../inference/backbone-pool';
import { DecodeThreads, defaultDecodeSlots, defaultDecodeThreads } from '../inference/decode-thread';
import { Semaphore } from '../inference/image-input';
import { MicroBatcher } from '../inference/micro-batcher';
import { backboneKey, ServedModel } from '../inference/served-model';
import { TrainedModel } from '../models/model.entity';
import { ModelRef } from '../models/model-ref';
import { ModelNotDeployedError, ModelNotFoundError, ModelNotReadyError } from '../serving.errors';
import { servingMetrics } from '../serving.metrics';
import { jpegNative } from '../inference/jpeg-native';

export interface DeployedInfo {
  id: string;
  name: string;
  version: number;
  deployedAt: Date;
}

interface Snapshot {
  version: string | null;
  deployments: Map<string, DeployedInfo>;
  /** Deployed versions per name, ascending. */
  byName: Map<string, DeployedInfo[]>;
  /** `name@alias` -> model id. */
  aliases: Map<string, string>;
  aliasesById: Map<string, string[]>;
  /** api key id -> granted model names. */
  grants: Map<string, Set<string>>;
}

/** A backbone configuration shared by every model on it: one extractor, one queue. */
export interface BackboneRuntime {
  key: string;
  spec: BackboneSpec;
  extractor: FeatureExtractor;
  inputSize: number;
  batcher: MicroBatcher<PassImage>;
  /** Where forward passes run: a serving thread (ONNX) or the main thread (TF.js fallback). */
  engine: string;
  pool?: BackbonePool;
}

export type ServingStatus = 'WARMING' | 'READY' | 'FAILED';

interface ServedEntry {
  info: DeployedInfo;
  status: ServingStatus;
  error?: string;
  failedAt?: number;
  model?: ServedModel;
  runtime?: BackboneRuntime;
  ready: Promise<void>;
  /** Loaded by deployModel ahead of its deployment row: kept until then (or until this time passes). */
  pinnedUntil?: number;
}

export interface ReadyModel {
  info: DeployedInfo;
  model: ServedModel;
  runtime: BackboneRuntime;
}

const RETRY_FAILED_MS = 10_000;

/**
 * Batches handed to each serving thread at once: the one it runs and the next, queued in the thread, so
 * that a thread starts its next pass as soon as one ends instead of idling until the event loop, busy with
 * HTTP under load, hands it over.
 */
const PASSES_PER_THREAD = 2;
/** Images per session.run that a CPU backbone's serving threads are measured at when SERVING_IMAGES_PER_RUN is 0 (auto). */
const RUN_SIZES = [1, 2, 4];

function emptySnapshot(): Snapshot {
  return { version: null, deployments: new Map(), byName: new Map(), aliases: new Map(), aliasesById: new Map(), grants: new Map() };
}

@Injectable()
export class ServingRegistry implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Serving');
  private snapshot = emptySnapshot();
  private readonly served = new Map<string, ServedEntry>();
  private readonly runtimes = new Map<string, Promise<BackboneRuntime>>();
  private readonly loadedRuntimes = new Map<string, BackboneRuntime>();
  private chain: Promise<void> = Promise.resolve();
  private syncing = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Bounds concurrent image decodes across all requests of this process. */
  readonly decodeSlots = new Semaphore(defaultDecodeSlots());
  /** Where classify's encoded images are decoded (and large ones resized): off the event loop. */
  readonly decoder: DecodeThreads;
  /** classify requests of this process between their model's resolution and their answer. */
  private classifying = 0;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly backbones: BackbonesService,
    private readonly readiness: ReadinessRegistry,
  ) {
    this.decoder = new DecodeThreads(config.serving.decodeThreads || defaultDecodeThreads());
  }

  /**
   * classify requests being served in this process. A request alone has its image decoded and its pass
   * run on the event loop, which has nothing else to do meanwhile (decodesOnCallingThread, BackbonePool).
   */
  get requestsInFlight(): number {
    return this.classifying;
  }

  /** Counts a classify request as in flight until `fn` settles. */
  async countingRequest<T>(fn: () => Promise<T>): Promise<T> {
    this.classifying++;
    try {
      return await fn();
    } finally {
      this.classifying--;
    }
  }

  /** Worker-only processes serve no GraphQL, so they load no models. */
  get enabled(): boolean {
    return this.config.role !== 'worker';
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    this.logger.log({ msg: 'JPEG decoding', decoder: jpegNative() ? 'native libjpeg-turbo' : 'libjpeg-turbo in WebAssembly (native/turbojpeg was not built by npm install)' });
    this.readiness.register('models', () => this.readinessReport());
    servingMetrics.inFlight.addCallback((r) => {
      for (const rt of this.loadedRuntimes.values()) r.observe(rt.batcher.load, { backbone: rt.key });
    });
    servingMetrics.batchLimits.addCallback((r) => {
      for (const rt of this.loadedRuntimes.values()) {
        r.observe(rt.batcher.opts.maxBatchSize, { backbone: rt.key, limit: 'pass' });
        r.observe(rt.pool?.imagesPerRun ?? rt.batcher.opts.maxBatchSize, { backbone: rt.key, limit: 'run' });
      }
    });
    servingMetrics.deployedModels.addCallback((r) => {
      const counts: Record<string, number> = { WARMING: 0, READY: 0, FAILED: 0 };
      for (const e of this.served.values()) counts[e.status]++;
      for (const [status, n] of Object.entries(counts)) r.observe(n, { status: status.toLowerCase() });
    });
    void this.refresh();
    this.timer = setInterval(() => {
      if (!this.syncing) void this.refresh();
    }, this.config.serving.syncMs);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    for (const rt of this.loadedRuntimes.values()) {
      rt.batcher.close();
      await rt.pool?.close().catch(() => undefined);
    }
    await this.decoder.close();
  }

  /** Re-reads the deployment state now (after this replica changed it); serialised with the periodic poll. */
  refresh(): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.stopped) return;
      this.syncing = true;
      try {
        await this.sync();
      } catch (err) {
        this.logger.warn({ msg: 'serving state sync failed', error: (err as Error).message });
      } finally {
        this.syncing = false;
      }
    });
    this.chain = run;
    return run;
  }

  private async sync(): Promise<void> {
    const [{ version }] = (await this.db.query('SELECT version::text AS version FROM serving_state WHERE id = 1')) as { version: string }[];
    if (version !== this.snapshot.version) {
      this.snapshot = await this.readSnapshot();
      this.logger.log({ msg: 'serving state loaded', version: this.snapshot.version, deployed: [...this.snapshot.deployments.values()].map((d) => `${d.name}@${d.version}`) });
    }
    const snap = this.snapshot;
    const now = Date.now();
    for (const [id, entry] of this.served) {
      if (snap.deployments.has(id)) entry.pinnedUntil = undefined;
      else if (!(entry.pinnedUntil && entry.pinnedUntil > now)) this.served.delete(id);
    }
    for (const info of snap.deployments.values()) {
      const entry = this.served.get(info.id);
      if (entry) entry.info = info;
      if (!entry || (entry.status === 'FAILED' && Date.now() - (entry.failedAt ?? 0) > RETRY_FAILED_MS)) this.load(info);
    }
  }

  private async readSnapshot(): Promise<Snapshot> {
    return this.db.transaction('REPEATABLE READ', async (tx) => {
      const snap = emptySnapshot();
      const [{ version }] = await tx.query('SELECT version::text AS version FROM serving_state WHERE id = 1');
      snap.version = version;
      const deployed: { id: string; name: string; version: number; deployed_at: Date }[] = await tx.query(
        'SELECT m.id, m.name, m.version, d.deployed_at FROM model_deployments d JOIN models m ON m.id = d.model_id ORDER BY m.name, m.version',
      );
      for (const d of deployed) {
        const info: DeployedInfo = { id: d.id, name: d.name, version: d.version, deployedAt: d.deployed_at };
        snap.deployments.set(d.id, info);
        const list = snap.byName.get(d.name) ?? [];
        list.push(info);
        snap.byName.set(d.name, list);
      }
      const aliases: { model_name: string; alias: string; model_id: string }[] = await tx.query('SELECT model_name, alias, model_id FROM model_aliases ORDER BY alias');
      for (const a of aliases) {
        snap.aliases.set(`${a.model_name}@${a.alias}`, a.model_id);
        snap.aliasesById.set(a.model_id, [...(snap.aliasesById.get(a.model_id) ?? []), a.alias]);
      }
      const grants: { model_name: string; api_key_id: string }[] = await tx.query('SELECT model_name, api_key_id FROM model_grants');
      for (const g of grants) {
        const set = snap.grants.get(g.api_key_id) ?? new Set<string>();
        set.add(g.model_name);
        snap.grants.set(g.api_key_id, set);
      }
      return snap;
    });
  }

  /**
   * Loads a model and warms it up (one inference through decode-free preprocessing, the batcher, the
   * backbone and the head). Used for deployed models and, by deployModel, before the deployment is written.
   */
  load(info: DeployedInfo): ServedEntry {
    const entry: ServedEntry = { info, status: 'WARMING', ready: Promise.resolve() };
    entry.ready = (async () => {
      const m = await this.db.getRepository(TrainedModel).findOneBy({ id: info.id });
      if (!m) throw new ModelNotFoundError(`model ${info.id} not found`);
      const model = new ServedModel(m);
      const runtime = await this.runtimeFor(m);
      await this.warmUp(model, runtime);
      entry.model = model;
      entry.runtime = runtime;
      entry.status = 'READY';
      this.logger.log({ msg: 'model ready', model: model.ref, id: m.id, backbone: runtime.key, engine: runtime.engine });
    })().catch((err: Error) => {
      entry.status = 'FAILED';
      entry.error = err.message;
      entry.failedAt = Date.now();
      this.logger.error({ msg: 'model failed to load', model: `${info.name}@${info.version}`, id: info.id, error: err.message });
      throw err;
    });
    entry.ready.catch(() => undefined);
    this.served.set(info.id, entry);
    return entry;
  }

  /** Loads and warms a model on this replica (deployModel does this before writing the deployment). */
  async prepare(info: DeployedInfo): Promise<void> {
    const existing = this.served.get(info.id);
    const entry = existing && existing.status !== 'FAILED' ? existing : this.load(info);
    if (!this.snapshot.deployments.has(info.id)) entry.pinnedUntil = Date.now() + 60_000;
    await entry.ready.catch((err: Error) => {
      throw new ModelNotReadyError(`model ${info.name}@${info.version} cannot be served: ${err.message}`);
    });
  }

  private runtimeFor(m: TrainedModel): Promise<BackboneRuntime> {
    const key = backboneKey(m);
    let found = this.runtimes.get(key);
    if (!found) {
      found = (async () => {
        const spec = await this.backbones.get(m.backbone.id);
        const extractor = await this.backbones.extractor(spec, m.backbone.featureLayer, m.backbone.inputSize);
        let run = (images: PassImage[]): Promise<Float32Array | PassOutput> => extractor.extract(preprocessPass(images, extractor.inputSize, extractor.inputPreprocessing), images.length, { batchSize: images.length });
        let engine = `${extractor.engine}/${extractor.backend} (main thread)`;
        let pool: BackbonePool | undefined;
        const threadConfig = onnxThreadConfig(extractor);
        const gpu = (threadConfig?.executionProviders ?? []).some((p) => p !== 'cpu');
        if (threadConfig) {
          const cores = availableParallelism();
          const workers = this.config.serving.backboneThreads || (gpu ? 1 : Math.min(cores, 4));
          const intraOp = Math.max(1, Math.floor(cores / workers));
          try {
            // On CPU with several narrow threads, a lone pass runs on a solo session using every core; the
            // pass of a request alone in the process, on such a session on the event loop.
            const soloThreads = !gpu && workers > 1 && intraOp < cores ? cores : 0;
            const inline = gpu ? undefined : { threads: cores, maxMs: this.config.serving.inlinePassMaxMs, alone: () => this.requestsInFlight <= 1 };
            const p = new BackbonePool({ ...threadConfig, threads: intraOp, nice: this.config.serving.backboneNice }, workers, { soloThreads, inline });
            await p.start();
            pool = p;
            run = (images) => p.runTimed(images);
            const nice = p.nice !== undefined && p.nice > 0 ? `, nice ${p.nice}` : '';
            const lone = p.hasInline ? `, a lone request's pass inline x ${cores} (${p.inlineCalibrationMs!.toFixed(1)} ms)` : '';
            engine = `${extractor.engine}/${extractor.backend} (${workers} serving thread${workers > 1 ? 's' : ''} x ${intraOp} intra-op${nice}${p.hasSolo ? `, solo pass x ${soloThreads}` : ''}${lone})`;
            if (p.inlineCalibrationMs !== undefined && !p.hasInline) {
              this.logger.log({ msg: 'forward passes stay off the event loop: a pass takes longer than SERVING_INLINE_PASS_MAX_MS', backbone: key, passMs: Number(p.inlineCalibrationMs.toFixed(2)), maxMs: this.config.serving.inlinePassMaxMs });
            }
          } catch (err) {
            this.logger.warn({ msg: 'backbone serving threads unavailable; forward passes run on the main thread', backbone: key, error: (err as Error).message });
          }
        }
        const s = this.config.serving;
        // On CPU, batching adds no throughput (ONNX Runtime at 224 px: batch 32 runs at 0.6-0.7 of batch 1's
        // images/s, its activations overflow the caches); small batches keep the tail short. bench:serving at
        // concurrency 32: max batch 4 -> 286 images/s, p99 147 ms; max batch 32 -> 245 images/s, p99 630-680 ms.
        // A pass of 4 saves the event loop hand-offs; the threads run it in engine runs of the size measured
        // best on this machine (BackbonePool.tuneImagesPerRun: ~0.3 s at 224 px on 2 cores, while the backbone
        // loads, so under whatever else the process serves then; SERVING_IMAGES_PER_RUN pins it).
        const maxBatchSize = s.maxBatchSize || (pool && !gpu ? 4 : 32);
        if (pool && !gpu && maxBatchSize > 1) {
          if (s.imagesPerRun) {
            pool.imagesPerRun = s.imagesPerRun;
          } else {
            const rates = await pool.tuneImagesPerRun(RUN_SIZES.filter((n) => n <= maxBatchSize), Math.min(maxBatchSize, Math.max(...RUN_SIZES)));
            engine += `, ${pool.imagesPerRun} image${pool.imagesPerRun === 1 ? '' : 's'} per run (images/s ${[...rates].map(([n, r]) => `${r.toFixed(0)} at ${n}`).join(', ')})`;
          }
        }
        const batcher = new MicroBatcher<PassImage>({
          name: key,
          maxBatchSize,
          maxDelayMs: s.maxBatchDelayMs,
          maxQueue: Math.max(s.maxQueue, maxBatchSize),
          maxInFlight: (pool?.size ?? 1) * PASSES_PER_THREAD,
          featureDim: extractor.featureDim,
          run: (images) => run(images),
          onBatch: ({ size, computeMs, queueMs, failed }) => {
            const attrs = { backbone: key };
            servingMetrics.batchSize.record(size, attrs);
            servingMetrics.computeTime.record(computeMs / 1000, { ...attrs, outcome: failed ? 'error' : 'ok' });
            for (const q of queueMs) servingMetrics.queueTime.record(q / 1000, attrs);
          },
        });
        const runtime: BackboneRuntime = { key, spec, extractor, inputSize: extractor.inputSize, batcher, engine, pool };
        this.loadedRuntimes.set(key, runtime);
        return runtime;
      })();
      found.catch(() => this.runtimes.delete(key));
      this.runtimes.set(key, found);
    }
    return found.then((rt) => {
      if (rt.extractor.featureDim !== m.dim) throw new Error(`backbone ${key} gives ${rt.extractor.featureDim} features; the model's head expects ${m.dim}`);
      return rt;
    });
  }

  private async warmUp(model: ServedModel, rt: BackboneRuntime): Promise<void> {
    // Decoded pixels, as classify sends them: the warm-up also runs the serving thread's preprocessing.
    const gray = grayImage(rt.inputSize);
    const ticket = rt.batcher.admit(1);
    try {
      const [features] = await rt.batcher.submit(ticket, [gray]);
      const [labels] = model.classify(features, 1, model.head.numClasses);
      const total = labels.reduce((s, l) => s + l.probability, 0);
      if (!labels.every((l) => Number.isFinite(l.probability)) || Math.abs(total - 1) > 1e-6) throw new Error('warm-up inference gave invalid probabilities');
    } finally {
      rt.batcher.release(ticket);
    }
  }

  // ---- resolution -------------------------------------------------------------------------------

  /** Aliases currently pointing at a model (from this replica's snapshot). */
  aliasesOf(modelId: string): string[] {
    return this.snapshot.aliasesById.get(modelId) ?? [];
  }

  /** This replica's serving status of a model, or null when it is not deployed. */
  statusOf(modelId: string): { status: ServingStatus; error: string | null; deployedAt: Date } | null {
    const info = this.snapshot.deployments.get(modelId);
    if (!info) return null;
    const e = this.served.get(modelId);
    return { status: e?.status ?? 'WARMING', error: e?.error ?? null, deployedAt: info.deployedAt };
  }

  /**
   * The deployed model a classify request addresses, checking the caller's grant (admins need none;
   * others need a grant on the model's name). Bare names mean the highest deployed version.
   */
  async resolveForClassify(principal: Principal, ref: ModelRef): Promise<DeployedInfo> {
    const snap = this.snapshot;
    let name: string;
    if (ref.kind === 'id') {
      const known = snap.deployments.get(ref.id)?.name ?? (await this.nameOf(ref.id));
      if (!known) throw new ModelNotFoundError(`model ${ref.text} not found`);
      name = known;
    } else {
      name = ref.name;
    }
    if (principal.role !== Role.ADMIN && !snap.grants.get(principal.keyId)?.has(name)) {
      throw new ForbiddenError(`this key has no grant to use model ${name} (grantModelAccess)`);
    }
    const versions = snap.byName.get(name) ?? [];
    let found: DeployedInfo | undefined;
    switch (ref.kind) {
      case 'id':
        found = snap.deployments.get(ref.id);
        if (!found) throw new ModelNotDeployedError(`model ${name} (${ref.id}) is not deployed`, { model: ref.text });
        return found;
      case 'version':
        found = versions.find((v) => v.version === ref.version);
        if (found) return found;
        if (await this.exists('SELECT 1 FROM models WHERE name = $1 AND version = $2', [name, ref.version])) {
          throw new ModelNotDeployedError(`model ${name}@${ref.version} is not deployed`, { model: ref.text });
        }
        throw new ModelNotFoundError(`model ${name} has no version ${ref.version}`, { model: ref.text });
      case 'alias': {
        const id = snap.aliases.get(`${name}@${ref.alias}`);
        found = id ? snap.deployments.get(id) : undefined;
        if (found) return found;
        throw new ModelNotFoundError(`model ${name} has no alias ${ref.alias}`, { model: ref.text });
      }
      case 'latest':
        found = versions[versions.length - 1];
        if (found) return found;
        if (await this.exists('SELECT 1 FROM models WHERE name = $1', [name])) throw new ModelNotDeployedError(`no version of model ${name} is deployed`, { model: ref.text });
        throw new ModelNotFoundError(`model ${name} not found`, { model: ref.text });
    }
  }

  /** Waits (up to the deadline, enforced by the caller) until a deployed model is warm on this replica. */
  async whenReady(info: DeployedInfo): Promise<ReadyModel> {
    let entry = this.served.get(info.id);
    if (!entry || (entry.status === 'FAILED' && Date.now() - (entry.failedAt ?? 0) > RETRY_FAILED_MS)) entry = this.load(info);
    await entry.ready.catch(() => undefined);
    if (entry.status !== 'READY' || !entry.model || !entry.runtime) {
      throw new ModelNotReadyError(`model ${info.name}@${info.version} is deployed but cannot be served by this replica: ${entry.error ?? 'not loaded'}`, { model: `${info.name}@${info.version}` });
    }
    return { info, model: entry.model, runtime: entry.runtime };
  }

  private async nameOf(id: string): Promise<string | undefined> {
    const rows: { name: string }[] = await this.db.query('SELECT name FROM models WHERE id = $1', [id]);
    return rows[0]?.name;
  }

  private async exists(sql: string, params: unknown[]): Promise<boolean> {
    return (await this.db.query(sql, params)).length > 0;
  }

  private readinessReport(): { ready: boolean; details: unknown } {
    const models: Record<string, string> = {};
    let ready = this.snapshot.version !== null;
    for (const info of this.snapshot.deployments.values()) {
      const e = this.served.get(info.id);
      const status = e?.status ?? 'WARMING';
      models[`${info.name}@${info.version}`] = status === 'FAILED' ? `failed: ${e?.error}` : status.toLowerCase();
      if (status !== 'READY') ready = false;
    }
    return { ready, details: { ready, stateVersion: this.snapshot.version, models } };
  }
}
