/**
 * API keys cached in memory, revocation still immediate: two server processes (replicas) on one real
 * PostgreSQL. A key used on replica B is served from B's memory; revoking it through replica A, through
 * plain SQL, or while B's change listener is cut off stops it on B; a replica with caching disabled
 * looks every key up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { createTestDatabase, TestDatabase } from '../support/database';
import { gql, runCli, ServerProcess, startServer } from '../support/server';

async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const pattern = new RegExp(`^${name}(_total)?(\\{([^}]*)\\})? (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = pattern.exec(line);
    if (m && (m[3] ?? '').includes(labels)) return Number(m[4]);
  }
  return 0;
}
const cacheHits = (url: string) => metric(url, 'privatune_auth_key_lookups', 'source="cache"');
const dbLookups = (url: string) => metric(url, 'privatune_auth_key_lookups', 'source="database"');

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

describe('API key cache across replicas (DATABASE_URL)', () => {
  let db: TestDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let pg: Client;
  let adminKey: string;
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: db.url, JOB_POLL_MS: '60000', ...extra });

  const me = async (server: ServerProcess, key: string) => gql(server.url, '{ me { name } }', undefined, key);
  const newKey = async (name: string): Promise<{ key: string; id: string }> => {
    const res = await gql(server(), 'mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id } } }', { i: { name, role: 'AUDITOR' } }, adminKey);
    assert.equal(res.errors, undefined);
    return { key: res.data.createApiKey.key, id: res.data.createApiKey.apiKey.id };
  };
  const server = () => a.url;
  /** Uses the key on B until B answers it from memory. */
  const warm = async (key: string) => {
    const hits = await cacheHits(b.url);
    for (let i = 0; i < 3; i++) assert.equal((await me(b, key)).errors, undefined);
    assert.ok((await cacheHits(b.url)) >= hits + 2, 'B answers repeated uses of a key from memory');
  };
  const listenerPids = async (): Promise<number[]> =>
    (await pg.query("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'privatune-key-listener' ORDER BY pid", [db.name])).rows.map((r) => r.pid);

  before(async () => {
    db = await createTestDatabase();
    [a, b] = await Promise.all([startServer(env()), startServer(env({ PRIVATUNE_ROLE: 'api' }))]);
    const out = await runCli(['apikey', 'create', '--role', 'admin', '--name', 'ops'], env());
    assert.equal(out.code, 0, out.stderr);
    adminKey = out.stdout.trim();
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    await until('both listeners', async () => (await listenerPids()).length === 2);
  });
  after(async () => {
    await pg?.end();
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
    await db?.drop();
  });

  it('answers a known key from memory: one database lookup, then cache hits', async () => {
    const { key } = await newKey('cached');
    const lookups = await dbLookups(b.url);
    await warm(key);
    assert.equal((await dbLookups(b.url)) - lookups, 1);
    assert.equal(await metric(b.url, 'privatune_auth_key_cache_active'), 1);
  });

  it('a key revoked through replica A stops working on replica B at once', async () => {
    const { key, id } = await newKey('revoked-via-a');
    await warm(key);
    const revoked = await gql(a.url, 'mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { revokedAt } }', { i: { id } }, adminKey);
    assert.equal(revoked.errors, undefined);
    // The notification is delivered at commit: B refuses the key within milliseconds of the mutation's answer.
    const ms = await until('B to refuse the revoked key', async () => (await me(b, key)).errors?.[0].extensions?.code === 'UNAUTHENTICATED', 2_000);
    assert.ok(ms < 1_000, `B refused after ${ms} ms`);
    assert.equal((await me(a, key)).errors?.[0].extensions?.code, 'UNAUTHENTICATED');
  });

  it('a key revoked with plain SQL (or the CLI) stops working on both replicas', async () => {
    const { key, id } = await newKey('revoked-via-sql');
    await warm(key);
    assert.equal((await me(a, key)).errors, undefined);
    await pg.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [id]);
    for (const s of [a, b]) await until('the revoked key to be refused', async () => (await me(s, key)).errors?.[0].extensions?.code === 'UNAUTHENTICATED', 2_000);
  });

  it('a revocation missed while the listener was cut off does not survive: the cache is emptied when the listener breaks', async () => {
    const { key, id } = await newKey('missed');
    await warm(key);
    const before = await listenerPids();
    // One transaction: B's listener is killed before the revocation commits, so B never hears of it.
    await pg.query('BEGIN');
    await pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'privatune-key-listener'", [db.name]);
    await pg.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [id]);
    await pg.query('COMMIT');
    // Both replicas have noticed and reconnected once two new listeners are there.
    await until('the listeners to reconnect', async () => {
      const now = await listenerPids();
      return now.length === 2 && now.every((p) => !before.includes(p));
    });
    assert.equal((await me(b, key)).errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    // Caching resumes with the new listener.
    const fresh = await newKey('after-reconnect');
    await until('the cache to be trusted again', async () => (await metric(b.url, 'privatune_auth_key_cache_active')) === 1);
    await warm(fresh.key);
  });

  it('with AUTH_KEY_CACHE_MS=0 every request looks its key up', async () => {
    const c = await startServer(env({ PRIVATUNE_ROLE: 'api', AUTH_KEY_CACHE_MS: '0' }));
    try {
      const { key } = await newKey('uncached');
      for (let i = 0; i < 3; i++) assert.equal((await me(c, key)).errors, undefined);
      assert.equal(await cacheHits(c.url), 0);
      assert.ok((await dbLookups(c.url)) >= 3);
      assert.equal(await metric(c.url, 'privatune_auth_key_cache_active'), 0);
    } finally {
      await c.stop('SIGKILL');
    }
  });
});
