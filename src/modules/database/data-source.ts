/**
 * TypeORM data source options and the migration runner. Schema changes only through migrations/ (never
 * `synchronize`); migrations run under a PostgreSQL advisory lock so that several processes starting at
 * once against the same database apply them exactly once.
 */
import { Client } from 'pg';
import { DataSource, DataSourceOptions } from 'typeorm';
import { migrations } from '../../../migrations';
import { entities } from './entities';

export function dataSourceOptions(url: string, extra: Partial<DataSourceOptions> = {}): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    logging: false,
    extra: { max: 20, application_name: 'privatune' },
    ...extra,
  } as DataSourceOptions;
}

/** Arbitrary constant key for pg_advisory_lock: "privatune migrations". */
const MIGRATION_LOCK = 7_402_113_661;

export async function runMigrations(url: string, log: (msg: string) => void = () => undefined): Promise<string[]> {
  const lock = new Client({ connectionString: url, application_name: 'privatune-migrate' });
  await lock.connect();
  const ds = new DataSource(dataSourceOptions(url, { extra: { max: 2 } }));
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await ds.initialize();
    const applied = await ds.runMigrations({ transaction: 'each' });
    for (const m of applied) log(`applied migration ${m.name}`);
    return applied.map((m) => m.name);
  } finally {
    if (ds.isInitialized) await ds.destroy();
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.end();
  }
}

/** true when every migration known to this build has been applied. */
export async function migrationsUpToDate(ds: DataSource): Promise<boolean> {
  return !(await ds.showMigrations());
}
