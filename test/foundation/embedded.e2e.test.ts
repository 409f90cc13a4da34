/**
 * The embedded default: with no DATABASE_URL the server starts its own PostgreSQL under DATA_DIR, the CLI
 * attaches to that same server while it runs, SIGTERM stops both, and the next start reuses the data.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gql, runCli, ServerProcess, startServer, waitReady } from '../support/server';

describe('embedded PostgreSQL default', () => {
  let dataDir: string;
  let server: ServerProcess | undefined;
  const env = () => ({ DATABASE_URL: undefined, DATA_DIR: dataDir });

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'privatune-embedded-'));
  });
  after(async () => {
    await server?.stop('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts its own PostgreSQL, serves, and keeps data across a clean restart', async () => {
    server = await startServer(env(), 120_000);
    await waitReady(server.url);
    assert.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')), 'data directory initialised under DATA_DIR');
    assert.ok(server.logs.some((l) => /started embedded PostgreSQL/.test(l)));

    // The CLI attaches to the running embedded server instead of starting a second one.
    const created = await runCli(['apikey', 'create', '--role', 'auditor', '--name', 'embedded'], env());
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    const me = await gql(server.url, '{ me { name role } }', undefined, key);
    assert.deepEqual(me.data.me, { name: 'embedded', role: 'AUDITOR' });

    assert.equal(await server.stop('SIGTERM'), 0);
    server = undefined;
    assert.equal(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), false, 'embedded PostgreSQL stopped with the server');

    server = await startServer(env(), 120_000);
    await waitReady(server.url);
    const again = await gql(server.url, '{ me { name } }', undefined, key);
    assert.equal(again.data.me.name, 'embedded');
  });
});
