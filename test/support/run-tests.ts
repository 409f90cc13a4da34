/**
 * Test entry point (`npm test`): runs every compiled `*.test.js` under dist/test with node's test runner.
 *
 * Tests that need PostgreSQL use DATABASE_URL when it is set (CI uses the machine's server); otherwise this
 * runner starts one embedded PostgreSQL server for the whole run and hands its URL to every test process.
 * Each test file then creates its own database on that server (see test/support/database.ts).
 *
 * Usage: node dist/test/support/run-tests.js [substring ...]   (only files whose path contains a substring)
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startEmbeddedPostgres } from '../../src/modules/database/embedded-postgres';

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out.sort();
}

async function main(): Promise<number> {
  const root = join(__dirname, '..', '..');
  const filters = process.argv.slice(2);
  const files = findTests(join(root, 'test'))
    .map((f) => relative(process.cwd(), f))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
  if (files.length === 0) {
    console.error(`no test files match ${filters.join(' ')}`);
    return 1;
  }
  let stopDatabase: (() => Promise<void>) | undefined;
  const env = { ...process.env };
  if (!env.DATABASE_URL) {
    const server = await startEmbeddedPostgres({ dataDir: join(process.cwd(), 'var', 'test-postgres'), fresh: true });
    env.DATABASE_URL = server.url;
    stopDatabase = server.stop;
    console.log(`# embedded PostgreSQL for tests at ${server.redactedUrl}`);
  }
  const concurrency = env.TEST_CONCURRENCY ?? '2';
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], {
      env,
      stdio: 'inherit',
    });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  await stopDatabase?.();
  return code;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
