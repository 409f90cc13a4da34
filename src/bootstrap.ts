import { NestFactory } from '@nestjs/core';
import net from 'node:net';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { graphqlBodyErrors, JSON_BODY_LIMIT } from './common/http/body-errors';
import { requestMiddleware } from './common/http/request.middleware';
import type { AppConfig } from './config/config';
import type { JsonLogger } from './common/logging/json-logger';
import { runMigrations } from './modules/database/data-source';
import { resolveDatabase } from './modules/database/database-url';
import { ReadinessRegistry } from './modules/health/readiness.registry';

export interface RunningApp {
  close(): Promise<void>;
}

export async function bootstrap(config: AppConfig, logger: JsonLogger): Promise<RunningApp> {
  const database = await resolveDatabase(config, (msg) => logger.log(msg, 'Database'));
  try {
    await runMigrations(database.url, (msg) => logger.log(msg, 'Database'));
    const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot({ config, databaseUrl: database.url, logger }), {
      logger,
      bufferLogs: false,
      // Only the JSON parser below: no route takes forms, and Nest's default urlencoded parser would check
      // every request's content type.
      bodyParser: false,
    });
    app.disable('x-powered-by');
    // No ETag computed for every response (a SHA-1 of each GraphQL answer): POST answers are never
    // revalidated. The dashboard sets its own ETag on its assets, and Express still answers 304 to those.
    app.set('etag', false);
    // First, so that every request, one whose body cannot be parsed included, has its id, span, duration
    // and access line.
    app.use(requestMiddleware);
    if (config.role === 'worker') {
      // Worker replicas run jobs and expose health and metrics; the API is served by `all` / `api` processes.
      app.use('/graphql', (_req: unknown, res: { status(n: number): { json(body: unknown): void } }) =>
        res.status(404).json({ errors: [{ message: 'this process is a worker (PRIVATUNE_ROLE=worker): GraphQL is served by the API processes', extensions: { code: 'NOT_FOUND' } }] }),
      );
    }
    // While draining, every response asks its client to close the connection (see `drain` below).
    let draining = false;
    app.use((_req: unknown, res: { setHeader(name: string, value: string): void }, next: () => void) => {
      if (draining) res.setHeader('Connection', 'close');
      next();
    });
    app.useBodyParser('json', { limit: JSON_BODY_LIMIT });
    app.use('/graphql', graphqlBodyErrors);
    await app.listen(config.port, config.host);
    const server = app.getHttpServer();
    let connections = 0;
    server.on('connection', (socket) => {
      connections++;
      socket.once('close', () => connections--);
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.log({ msg: 'Privatune ready', port, graphql: `http://localhost:${port}/graphql`, database: database.redactedUrl }, 'Main');
    /**
     * Stops taking requests without cutting any. First, for SHUTDOWN_DRAIN_MS, readiness is 503 (load
     * balancers stop routing here) while requests are still answered, each with `Connection: close`, so
     * keep-alive clients reconnect elsewhere after their answer. Then the listening socket closes (new
     * connections are refused) but, unlike http.Server.close, open connections are not cut while idle: a
     * client may be sending on one, and would get ECONNRESET; each gets its answer and closes. Ends when no
     * connection is left or after another SHUTDOWN_DRAIN_MS; Nest's close then ends whatever remains.
     */
    const drain = async () => {
      draining = true;
      app.get(ReadinessRegistry).register('shutdown', () => ({ ready: false, details: 'draining: the process is stopping' }));
      const whileConnected = async (ms: number) => {
        const deadline = Date.now() + ms;
        while (connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      };
      await whileConnected(config.shutdownDrainMs);
      net.Server.prototype.close.call(server);
      await whileConnected(config.shutdownDrainMs);
    };
    return {
      close: async () => {
        await drain();
        await app.close();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
