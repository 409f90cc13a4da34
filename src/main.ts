/**
 * Starts Privatune: V8's heap growth for a server (common/heap-growth.ts), configuration (validated),
 * telemetry (before anything it instruments loads), the database (DATABASE_URL or the embedded server),
 * migrations, then the NestJS application.
 * SIGINT/SIGTERM drain HTTP (bootstrap.ts), then close the workers (a job still extracting goes back to the
 * queue), the HTTP server and the database, in that order.
 */
import 'reflect-metadata';
import { ConfigError, loadConfig, SHUTDOWN_GRACE_MS } from './config/config';
import { setHeapGrowth } from './common/heap-growth';
import { JsonLogger } from './common/logging/json-logger';
import { startTelemetry, stopTelemetry } from './telemetry/telemetry';

async function main(): Promise<void> {
  setHeapGrowth();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  startTelemetry(config);
  const logger = new JsonLogger(config.logLevel);

  // Loaded only now, after telemetry has patched graphql and pg.
  const { bootstrap } = await import('./bootstrap');
  const app = await bootstrap(config, logger);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log({ msg: 'shutting down', signal }, 'Main');
    const force = setTimeout(() => {
      logger.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS / 1000} s; exiting`, 'Main');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    try {
      await app.close();
      await stopTelemetry();
      logger.log('stopped', 'Main');
      process.exit(0);
    } catch (err) {
      logger.error(err as Error, 'Main');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'startup failed', error: String(err?.stack ?? err) })}\n`);
  process.exit(1);
});
