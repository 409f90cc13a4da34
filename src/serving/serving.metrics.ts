/** Serving metrics (OpenTelemetry API; exported at /metrics in Prometheus format). */
import { metrics } from '@opentelemetry/api';

const meter = metrics.getMeter('privatune.serving');

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const servingMetrics = {
  requests: meter.createCounter('privatune_inference_requests', {
    description: 'classify requests by model, version and outcome (ok, bad_input, overloaded, timeout, not_ready, error)',
  }),
  images: meter.createCounter('privatune_inference_images', { description: 'Images classified, by model and version' }),
  requestDuration: meter.createHistogram('privatune_inference_request_duration_seconds', {
    description: 'classify latency per model (admission to answer, excluding HTTP and GraphQL parsing)',
    unit: 's',
    advice: { explicitBucketBoundaries: SECONDS },
  }),
  batchSize: meter.createHistogram('privatune_inference_batch_size', {
    description: 'Images per backbone forward pass, by backbone (its count is the number of forward passes)',
    advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] },
  }),
  queueTime: meter.createHistogram('privatune_inference_queue_time_seconds', {
    description: 'Time an image waited in its backbone queue before its forward pass started',
    unit: 's',
    advice: { explicitBucketBoundaries: SECONDS },
  }),
  computeTime: meter.createHistogram('privatune_inference_compute_time_seconds', {
    description: 'Backbone forward pass time per batch',
    unit: 's',
    advice: { explicitBucketBoundaries: SECONDS },
  }),
  inFlight: meter.createObservableGauge('privatune_inference_in_flight', { description: 'Images admitted per backbone (decoding, queued or computing)' }),
  batchLimits: meter.createObservableGauge('privatune_serving_batch_limit', {
    description:
      'Most images per forward pass (limit="pass": SERVING_MAX_BATCH_SIZE) and per engine run within it (limit="run": SERVING_IMAGES_PER_RUN, or measured when the backbone loads), by backbone',
  }),
  deployedModels: meter.createObservableGauge('privatune_serving_models', { description: 'Deployed models on this replica by readiness status' }),
};
