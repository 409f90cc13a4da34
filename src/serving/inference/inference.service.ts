/**
 * classify: resolve the model (in memory, with the caller's grant), check every image cheaply, take room
 * in the backbone's bounded queue, decode (bounded concurrency, in a decode thread, which also prepares
 * images larger than the backbone's input), wait for the shared forward pass (which prepares the others
 * where it runs), apply the model's head. A request alone in the process has its small JPEG decoded and
 * its pass run on the event loop. One deadline covers the whole request. Inference is post-processing of a
 * released model: nothing here touches a privacy ledger.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { BadInputError, DomainError } from '../../common/errors/domain-errors';
import { Principal } from '../../modules/auth/principal';
import { DeployedInfo, ServingRegistry } from '../deployments/serving-registry.service';
import { parseModelRef } from '../models/model-ref';
import { InferenceFailedError, InferenceTimeoutError } from '../serving.errors';
import { servingMetrics } from '../serving.metrics';
import { decodeForPass } from './image-decode';
import { checkImage, decodesOnCallingThread, ImageInputLike, prepareChecked } from './image-input';
import type { LabelProbability } from './served-model';

export const MAX_TOP_K = 1000;

export interface ClassifyRequest {
  model: string;
  images: ImageInputLike[];
  topK?: number | null;
}

export interface ClassifyOutcome {
  model: DeployedInfo;
  predictions: LabelProbability[][];
}

function outcomeOf(err: unknown): string {
  if (!(err instanceof DomainError)) return 'error';
  switch (err.code) {
    case 'BAD_USER_INPUT':
      return 'bad_input';
    case 'OVERLOADED':
      return 'overloaded';
    case 'TIMEOUT':
      return 'timeout';
    case 'MODEL_NOT_READY':
      return 'not_ready';
    default:
      return err.code.toLowerCase();
  }
}

@Injectable()
export class InferenceService {
  private readonly logger = new Logger('Inference');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ServingRegistry,
  ) {}

  async classify(principal: Principal, req: ClassifyRequest): Promise<ClassifyOutcome> {
    const started = performance.now();
    const limits = this.config.serving;
    const images = req.images ?? [];
    if (images.length === 0) throw new BadInputError('images must hold at least one image', { field: 'images', reason: 'NO_IMAGES' });
    if (images.length > limits.maxImagesPerRequest) {
      throw new BadInputError(`at most ${limits.maxImagesPerRequest} images per request (got ${images.length})`, { field: 'images', reason: 'TOO_MANY_IMAGES', limit: limits.maxImagesPerRequest });
    }
    const topK = req.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) throw new BadInputError(`topK must be an integer from 1 to ${MAX_TOP_K}`, { field: 'topK', reason: 'INVALID_TOP_K' });
    const ref = parseModelRef(req.model);
    const info = await this.registry.resolveForClassify(principal, ref);

    const attrs = { model: info.name, version: String(info.version) };
    try {
      const predictions = await this.registry.countingRequest(() => this.run(info, images, topK, started + limits.requestTimeoutMs));
      servingMetrics.requests.add(1, { ...attrs, outcome: 'ok' });
      servingMetrics.images.add(images.length, attrs);
      return { model: info, predictions };
    } catch (err) {
      servingMetrics.requests.add(1, { ...attrs, outcome: outcomeOf(err) });
      if (err instanceof DomainError) throw err;
      this.logger.error({ msg: 'inference failed', model: `${info.name}@${info.version}`, error: (err as Error).message });
      throw new InferenceFailedError(`inference with ${info.name}@${info.version} failed; the error was logged`);
    } finally {
      servingMetrics.requestDuration.record((performance.now() - started) / 1000, attrs);
    }
  }

  private async run(info: DeployedInfo, inputs: ImageInputLike[], topK: number, deadline: number): Promise<LabelProbability[][]> {
    const limits = this.config.serving;
    // Cheap checks for every image before the request takes any room in the queue.
    const checked = inputs.map((img, i) => checkImage(img, i, limits));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new InferenceTimeoutError(`no answer within ${limits.requestTimeoutMs} ms (SERVING_REQUEST_TIMEOUT_MS)`, { timeoutMs: limits.requestTimeoutMs, retryable: true })),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      const ready = await Promise.race([this.registry.whenReady(info), timeout]);
      const { model, runtime } = ready;
      const ticket = runtime.batcher.admit(checked.length);
      let abandoned = false;
      try {
        const work = (async () => {
          const target = { inputSize: runtime.inputSize, preprocessing: runtime.extractor.inputPreprocessing };
          const images = await Promise.all(
            checked.map((img, i) =>
              this.registry.decodeSlots.run(async () => {
                if (abandoned) throw new Error('abandoned');
                const here = decodesOnCallingThread(img, { requestsInFlight: this.registry.requestsInFlight, imagesInRequest: checked.length, target });
                return prepareChecked(img, i, limits, target, here ? decodeForPass : this.registry.decoder.decodeForPass);
              }),
            ),
          );
          const rows = await runtime.batcher.submit(ticket, images);
          const D = model.head.dim;
          const features = new Float32Array(rows.length * D);
          rows.forEach((r, i) => features.set(r, i * D));
          return model.classify(features, rows.length, topK);
        })();
        return await Promise.race([work, timeout]);
      } finally {
        abandoned = true;
        runtime.batcher.release(ticket);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
