/**
 * OpenTelemetry, started before NestJS so that graphql and pg are instrumented when they load. HTTP and
 * Express are not instrumented by OpenTelemetry's packages: Express's instrumentation wraps every
 * middleware and router layer of every request (18% of the event loop's time with 32 clients on a trivial
 * query, in a CPU profile of bench:serving), and the HTTP instrumentation patched every request's emitters
 * (a third of a trivial request's cost); the platform's entry middleware makes the same server span and
 * duration metric itself (http-server.ts).
 *
 * Metrics are always collected and served at /metrics in Prometheus text format (the exporter runs
 * without its own server; the platform's MetricsController serves it). Traces are exported over OTLP/HTTP
 * when OTEL_EXPORTER_OTLP_ENDPOINT is set. Otherwise spans are not sampled: trace and span ids still exist
 * (trace ids in logs, trace context carried into jobs), but no span records attributes or events that
 * nobody would read, which keeps instrumentation off the serving hot path; GraphQL, whose instrumentation
 * only makes spans, is then not instrumented at all (pg is: its metrics feed the dashboards).
 *
 * The Node.js runtime is measured too: event-loop delay (nodejs_eventloop_delay_p50/p90/p99/max in
 * seconds, since the previous scrape, the 10 ms sampling period included) and utilisation, GC and heap. A forward pass or any other long synchronous
 * work on the event loop shows there first.
 */
import { NodeSDK, tracing } from '@opentelemetry/sdk-node';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';
import type { AppConfig } from '../config/config';

let exporter: PrometheusExporter | undefined;
let sdk: NodeSDK | undefined;

export function startTelemetry(config: Pick<AppConfig, 'otel'>): void {
  if (sdk) return;
  exporter = new PrometheusExporter({ preventServerStart: true });
  const endpoint = config.otel.tracesEndpoint?.replace(/\/+$/, '');
  sdk = new NodeSDK({
    serviceName: config.otel.serviceName,
    metricReaders: [exporter],
    sampler: endpoint ? new tracing.ParentBasedSampler({ root: new tracing.AlwaysOnSampler() }) : new tracing.AlwaysOffSampler(),
    spanProcessors: endpoint
      ? [new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }))]
      : [new tracing.NoopSpanProcessor()],
    instrumentations: [
      // GraphQL spans carry no metrics: without a trace exporter the wrapping of every resolver is pure cost.
      ...(endpoint ? [new GraphQLInstrumentation({ mergeItems: true, ignoreTrivialResolveSpans: true })] : []),
      // Statement text only; parameter values (which could hold key hashes) are not recorded.
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
      // Event-loop delay sampled every 10 ms (the histogram's resolution).
      new RuntimeNodeInstrumentation({ monitoringPrecision: 10 }),
    ],
  });
  sdk.start();
}

/** The Prometheus exporter that /metrics reads; started lazily when telemetry was not (e.g. in the CLI). */
export function prometheusExporter(): PrometheusExporter {
  if (!exporter) throw new Error('telemetry not started');
  return exporter;
}

export async function stopTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown().catch(() => undefined);
}
