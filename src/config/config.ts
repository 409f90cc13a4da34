/**
 * Configuration, read once from the environment and validated before anything starts. A bad value stops
 * the process with one line naming the variable and what is expected (see ConfigError).
 */
import { cpus } from 'node:os';
import { resolve } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type ProcessRole = 'all' | 'api' | 'worker';

export interface AppConfig {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /** Unset: the embedded PostgreSQL under dataDir/postgres is used. */
  databaseUrl: string | undefined;
  dataDir: string;
  artifactDir: string;
  logLevel: LogLevel;
  role: ProcessRole;
  /** Engine for backbones: auto (ONNX Runtime, or TF.js when only TF.js has a GPU here), onnx or tfjs. */
  backboneEngine: 'auto' | 'onnx' | 'tfjs';
  /**
   * On SIGTERM/SIGINT, how long HTTP keeps answering, with `Connection: close` and /health/ready at 503, so
   * that keep-alive clients and load balancers move away before the server stops accepting (at most).
   */
  shutdownDrainMs: number;
  graphql: {
    introspection: boolean;
    playground: boolean;
    maxDepth: number;
    maxCost: number;
  };
  otel: {
    serviceName: string;
    tracesEndpoint: string | undefined;
  };
  auth: {
    /**
     * Longest an authenticated API key is trusted from memory (0: look it up on every request). Revocations
     * reach every process at once through PostgreSQL notifications; this bounds a lost one.
     */
    keyCacheMs: number;
  };
  worker: {
    concurrency: number;
    /** How often a running job proves its worker alive; jobs silent for 3x this are recovered. */
    heartbeatMs: number;
    /** How often an idle worker looks for queued jobs. */
    pollMs: number;
    /**
     * Linux nice value of finetune feature extraction in a process that also serves the API (PRIVATUNE_ROLE=all):
     * below the serving passes (SERVING_BACKBONE_NICE), so that classify's forward passes preempt it and it
     * takes what serving leaves. Worker processes extract at the process's priority. 0: no change.
     */
    extractionNice: number;
    /** Fault injection for crash tests (NODE_ENV=test only): pause this long right after the noisy release. */
    testPauseAfterReleaseMs: number;
  };
  serving: ServingConfig;
}

/** Model serving: request limits, dynamic micro-batching per backbone, and how replicas follow deployments. */
export interface ServingConfig {
  /** Most images one classify request may carry. */
  maxImagesPerRequest: number;
  /** Most bytes per image (the decoded base64: an encoded file, or raw pixels). */
  maxImageBytes: number;
  /** Most pixels (width x height) per image, checked from the header before decoding. */
  maxImagePixels: number;
  /**
   * Most images in one backbone forward pass; 0: auto (4 on CPU serving threads, where larger batches only
   * cost cache misses at 224 px and a pass saves only hand-offs, 32 elsewhere).
   */
  maxBatchSize: number;
  /**
   * Most images per engine run within a pass on a CPU serving thread (a larger pass runs in chunks of it);
   * 0: measured when the backbone loads (1, 2 or 4: the fewest within 3% of the fastest).
   */
  imagesPerRun: number;
  /** Longest a queued image waits for companions while more images are being decoded. */
  maxBatchDelayMs: number;
  /** Most images admitted per backbone (being decoded or waiting for the backbone); more are refused (OVERLOADED). */
  maxQueue: number;
  /** A classify request not answered within this time fails with TIMEOUT. */
  requestTimeoutMs: number;
  /** How often each replica checks PostgreSQL for deployment, alias and grant changes. */
  syncMs: number;
  /** Serving threads (sessions) per ONNX backbone; 0: automatic (one per core up to 4 on CPU, one on GPU). */
  backboneThreads: number;
  /**
   * Linux nice value of the threads that run forward passes under load (finetune extraction in the same
   * process runs lower still: WORKER_EXTRACTION_NICE); 0 keeps the process's priority.
   */
  backboneNice: number;
  /** Threads that decode classify's images; 0: automatic (one per core, up to 4). */
  decodeThreads: number;
  /**
   * A request alone in the process has its forward pass run on the event loop (no thread hand-offs) when
   * the backbone's pass takes at most this long, timed at start: the event loop is blocked for that long.
   * 0: never (every pass in a serving thread). CPU only.
   */
  inlinePassMaxMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    expected: string,
    got: string | undefined,
  ) {
    super(`Invalid configuration: ${variable} must be ${expected}${got === undefined ? ' (it is not set)' : ` (got "${got}")`}`);
  }
}

type Env = Record<string, string | undefined>;

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
  }
  return value;
}

function readBool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, 'true or false', raw);
}

function readEnum<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(name, `one of ${allowed.join(', ')}`, raw);
  return raw as T;
}

function readUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `a URL (${protocols.join(' or ')})`, redact(raw));
  }
  if (!protocols.includes(url.protocol)) throw new ConfigError(name, `a URL (${protocols.join(' or ')})`, redact(raw));
  return raw;
}

/** Hides the password of a connection URL so that it can appear in messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

export function loadConfig(env: Env = process.env): AppConfig {
  const nodeEnv = readEnum(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const dataDir = resolve(env.DATA_DIR || 'var');
  return {
    nodeEnv,
    port: readInt(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    databaseUrl: readUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir,
    artifactDir: resolve(env.ARTIFACT_DIR || resolve(dataDir, 'artifacts')),
    logLevel: readEnum(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    role: readEnum(env, 'PRIVATUNE_ROLE', ['all', 'api', 'worker'] as const, 'all'),
    backboneEngine: readEnum(env, 'BACKBONE_ENGINE', ['auto', 'onnx', 'tfjs'] as const, 'auto'),
    shutdownDrainMs: readInt(env, 'SHUTDOWN_DRAIN_MS', 1000, 0, 5000),
    graphql: {
      introspection: readBool(env, 'GRAPHQL_INTROSPECTION', nodeEnv !== 'production'),
      playground: readBool(env, 'GRAPHQL_PLAYGROUND', nodeEnv === 'development'),
      maxDepth: readInt(env, 'GRAPHQL_MAX_DEPTH', 12, 1, 100),
      maxCost: readInt(env, 'GRAPHQL_MAX_COST', 5000, 1, 10_000_000),
    },
    otel: {
      serviceName: env.OTEL_SERVICE_NAME || 'privatune',
      tracesEndpoint: readUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']),
    },
    auth: {
      keyCacheMs: readInt(env, 'AUTH_KEY_CACHE_MS', 60_000, 0, 3_600_000),
    },
    worker: {
      concurrency: readInt(env, 'WORKER_CONCURRENCY', 1, 0, Math.max(1, cpus().length * 4)),
      heartbeatMs: readInt(env, 'JOB_HEARTBEAT_MS', 10_000, 100, 3_600_000),
      pollMs: readInt(env, 'JOB_POLL_MS', 1_000, 10, 600_000),
      extractionNice: readInt(env, 'WORKER_EXTRACTION_NICE', 19, 0, 19),
      testPauseAfterReleaseMs: nodeEnv === 'test' ? readInt(env, 'TEST_PAUSE_AFTER_RELEASE_MS', 0, 0, 600_000) : 0,
    },
    serving: {
      maxImagesPerRequest: readInt(env, 'SERVING_MAX_IMAGES', 32, 1, 1024),
      maxImageBytes: readInt(env, 'SERVING_MAX_IMAGE_BYTES', 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
      maxImagePixels: readInt(env, 'SERVING_MAX_IMAGE_PIXELS', 4096 * 4096, 1, 100_000_000),
      maxBatchSize: readInt(env, 'SERVING_MAX_BATCH_SIZE', 0, 0, 1024),
      imagesPerRun: readInt(env, 'SERVING_IMAGES_PER_RUN', 0, 0, 1024),
      maxBatchDelayMs: readInt(env, 'SERVING_MAX_BATCH_DELAY_MS', 5, 0, 10_000),
      maxQueue: readInt(env, 'SERVING_MAX_QUEUE', 256, 1, 100_000),
      requestTimeoutMs: readInt(env, 'SERVING_REQUEST_TIMEOUT_MS', 10_000, 10, 600_000),
      syncMs: readInt(env, 'SERVING_SYNC_MS', 1_000, 50, 600_000),
      backboneThreads: readInt(env, 'SERVING_BACKBONE_THREADS', 0, 0, 64),
      backboneNice: readInt(env, 'SERVING_BACKBONE_NICE', 10, 0, 19),
      decodeThreads: readInt(env, 'SERVING_DECODE_THREADS', 0, 0, 64),
      inlinePassMaxMs: readInt(env, 'SERVING_INLINE_PASS_MAX_MS', 10, 0, 1000),
    },
  };
}

/** Injection token for AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * How long a stopping process may take before it exits anyway (main.ts). Stopping waits for a job past its
 * noisy release to finish; docker-compose gives the platform's containers longer than this before SIGKILL.
 */
export const SHUTDOWN_GRACE_MS = 20_000;
