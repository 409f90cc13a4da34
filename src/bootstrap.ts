import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import type { AppConfig } from './config/config';
import type { JsonLogger } from './common/logging/json-logger';
import { runMigrations } from './modules/database/data-source';
import { resolveDatabase } from './modules/database/database-url';

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
    });
    app.disable('x-powered-by');
    if (config.role === 'worker') {
      // Worker replicas run jobs and expose health and metrics; the API is served by `all` / `api` processes.
      app.use('/graphql', (_req: unknown, res: { status(n: number): { json(body: unknown): void } }) =>
        res.status(404).json({ errors: [{ message: 'this process is a worker (PRIVATUNE_ROLE=worker): GraphQL is served by the API processes', extensions: { code: 'NOT_FOUND' } }] }),
      );
    }
    app.useBodyParser('json', { limit: '64mb' });
    await app.listen(config.port, config.host);
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.log({ msg: 'Privatune ready', port, graphql: `http://localhost:${port}/graphql`, database: database.redactedUrl }, 'Main');
    return {
      close: async () => {
        await app.close();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}
