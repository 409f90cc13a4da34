/**
 * Resolves which PostgreSQL to use: DATABASE_URL when set, else the embedded server under DATA_DIR/postgres.
 * Used by the server, the CLI and the worker, so they all share one database on a machine.
 */
import { join } from 'node:path';
import type { AppConfig } from '../../config/config';
import { redact } from '../../config/config';
import { EmbeddedPostgresHandle, startEmbeddedPostgres } from './embedded-postgres';

export interface ResolvedDatabase {
  url: string;
  redactedUrl: string;
  embedded: boolean;
  /** Stops the embedded server if this process started it; no-op otherwise. */
  close(): Promise<void>;
}

export async function resolveDatabase(config: AppConfig, log: (msg: string) => void = () => undefined): Promise<ResolvedDatabase> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, redactedUrl: redact(config.databaseUrl), embedded: false, close: async () => undefined };
  }
  const handle: EmbeddedPostgresHandle = await startEmbeddedPostgres({ dataDir: join(config.dataDir, 'postgres') });
  log(handle.owner ? `started embedded PostgreSQL at ${handle.redactedUrl}` : `attached to running embedded PostgreSQL at ${handle.redactedUrl}`);
  return { url: handle.url, redactedUrl: handle.redactedUrl, embedded: true, close: () => handle.stop() };
}
