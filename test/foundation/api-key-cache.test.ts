/**
 * ApiKeyCache on a real PostgreSQL (its change listener connected): lookups in flight when a change is
 * announced are not cached, entries expire, and a listener whose connection stalls stops being trusted
 * within the trust window and is replaced.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config/config';
import { ApiKeyCache } from '../../src/modules/auth/api-key-cache';
import type { Principal } from '../../src/modules/auth/principal';
import { Role } from '../../src/modules/auth/role';
import { createTestDatabase, TestDatabase } from '../support/database';

const principal: Principal = { keyId: '00000000-0000-4000-8000-000000000001', name: 'k', role: Role.AUDITOR };

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

describe('ApiKeyCache (DATABASE_URL)', () => {
  let db: TestDatabase;
  let pg: Client;
  const caches: ApiKeyCache[] = [];
  const start = async (keyCacheMs: number): Promise<ApiKeyCache> => {
    const cache = new ApiKeyCache(loadConfig({ AUTH_KEY_CACHE_MS: String(keyCacheMs) }), { options: { url: db.url } } as unknown as DataSource);
    caches.push(cache);
    await cache.onApplicationBootstrap();
    return cache;
  };
  const listenerPids = async (): Promise<number[]> =>
    (await pg.query("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'privatune-key-listener'", [db.name])).rows.map((r) => r.pid);

  before(async () => {
    db = await createTestDatabase();
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });
  after(async () => {
    for (const c of caches) await c.onApplicationShutdown();
    await pg?.end();
    await db?.drop();
  });

  it('caches a lookup, but not one that was in flight when a change was announced', async () => {
    const cache = await start(60_000);
    assert.equal(cache.active, true);
    cache.set('h1', principal, cache.begin());
    assert.deepEqual(cache.get('h1'), principal);

    const begun = cache.begin();
    await pg.query(`SELECT pg_notify('privatune_api_keys', $1)`, ['00000000-0000-4000-8000-0000000000ff']);
    await until('the notification', () => cache.begin() !== begun, 2_000);
    cache.set('h2', principal, begun);
    assert.equal(cache.get('h2'), undefined, 'a lookup that began before the change is not cached');
    assert.deepEqual(cache.get('h1'), principal, 'a change to another key leaves this one');

    await pg.query(`SELECT pg_notify('privatune_api_keys', $1)`, [principal.keyId]);
    await until('the key to be dropped', () => cache.get('h1') === undefined, 2_000);
  });

  it('expires entries after AUTH_KEY_CACHE_MS', async () => {
    const cache = await start(100);
    cache.set('h', principal, cache.begin());
    assert.deepEqual(cache.get('h'), principal);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(cache.get('h'), undefined);
  });

  it('stops trusting a listener whose connection stalls, then replaces it', async (t) => {
    const others = new Set(await listenerPids());
    const cache = await start(60_000);
    cache.set('h', principal, cache.begin());
    // Freeze this cache's listener backend, as a network partition would.
    const pid = (await listenerPids()).find((p) => !others.has(p))!;
    try {
      process.kill(pid, 'SIGSTOP');
    } catch (err) {
      t.skip(`cannot signal the PostgreSQL backend (${(err as Error).message})`);
      return;
    }
    try {
      const ms = await until('the cache to stop trusting the stalled listener', () => !cache.active, 5_000);
      assert.ok(ms <= 3_500, `untrusted after ${ms} ms`);
      assert.equal(cache.get('h'), undefined);
      // After 10 s without an answer the connection is replaced by a new one, and the cache is trusted again (empty).
      await until('a new listener', async () => (await listenerPids()).some((p) => p !== pid && !others.has(p)), 20_000);
      await until('the cache to be trusted again', () => cache.active, 5_000);
      assert.equal(cache.get('h'), undefined, 'nothing cached before the stall survives it');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
