/**
 * Each incoming HTTP request's trace span and duration metric, as OpenTelemetry's HTTP instrumentation made
 * them (the caller's W3C trace context, a SERVER span named after the method, `http.server.request.duration`
 * in seconds with the same attributes and buckets), without what that generic instrumentation costs: it
 * patched every request's and response's event emitters to carry its context, and computed a dozen span
 * attributes even for spans nobody records. A trivial authenticated `{ me }` served 2025-2088 requests/s
 * with it and 2829-2999 without it, at 32 concurrent clients on the project's 2-core VM (docs/benchmarks.md).
 * The platform's one entry middleware (common/http/request.middleware.ts) runs the rest of the request in
 * the returned context, which async context tracking (body parsing included) carries to the resolvers,
 * the logs and the jobs they enqueue.
 */
import { context, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';

const tracer = trace.getTracer('privatune.http');
const meter = metrics.getMeter('privatune.http');
const duration = meter.createHistogram('http.server.request.duration', {
  description: 'Duration of HTTP server requests.',
  unit: 's',
  // The OpenTelemetry semantic conventions' buckets for this metric.
  advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] },
});

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export interface IncomingTrace {
  /** The request's context: its span, child of the caller's trace context when one was sent. */
  context: Context;
  /** Ends the span and records the duration (once; later calls do nothing). */
  end(res: ServerResponse): void;
}

/** `path`: the request's path without its query (where routers have rewritten `req.url`, the original). */
export function traceIncoming(req: IncomingMessage, path: string): IncomingTrace {
  const started = performance.now();
  // Unknown methods are one value, so that a client cannot mint metric series.
  const method = req.method && KNOWN_METHODS.has(req.method) ? req.method : '_OTHER';
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const request: Attributes = { 'http.request.method': method, 'url.scheme': 'http', 'network.protocol.version': req.httpVersion };
  const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
  // Recorded only when traces are exported (telemetry.ts samples nothing otherwise). Never headers or bodies.
  if (span.isRecording()) span.setAttributes({ ...request, 'url.path': path });
  let ended = false;
  return {
    context: trace.setSpan(parent, span),
    end(res) {
      if (ended) return;
      ended = true;
      const status = res.statusCode;
      duration.record((performance.now() - started) / 1000, { ...request, 'http.response.status_code': status });
      if (span.isRecording()) {
        span.setAttribute('http.response.status_code', status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        else if (!res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR, message: 'connection closed before the response was sent' });
      }
      span.end();
    },
  };
}

/** Runs `fn` in the request's context. */
export function withIncoming<T>(incoming: IncomingTrace, fn: () => T): T {
  return context.with(incoming.context, fn);
}
