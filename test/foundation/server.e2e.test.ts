/**
 * End to end over HTTP against the real server process on a real PostgreSQL (DATABASE_URL): readiness,
 * API keys from the CLI and GraphQL, UNAUTHENTICATED / FORBIDDEN, revocation, query limits, /metrics,
 * clean SIGTERM and a restart on the same data.
 */
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, TestDatabase } from '../support/database';
import { gql, runCli, ServerProcess, startServer, waitReady } from '../support/server';

describe('server end to end (DATABASE_URL)', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let adminKey: string;
  const env = () => ({ DATABASE_URL: db.url, GRAPHQL_MAX_DEPTH: '4', GRAPHQL_MAX_COST: '300' });

  before(async () => {
    db = await createTestDatabase({ migrate: false }); // the server applies migrations itself
    server = await startServer(env());
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await db?.drop();
  });

  it('is live and ready once migrations are applied', async () => {
    await waitReady(server.url);
    const live = await fetch(`${server.url}/health/live`);
    assert.equal(live.status, 200);
    const ready = (await (await fetch(`${server.url}/health/ready`)).json()) as { status: string; checks: { database: string } };
    assert.equal(ready.status, 'ok');
    assert.equal(ready.checks.database, 'ok');
  });

  it('creates the first admin key from the CLI, printed once on stdout', async () => {
    const out = await runCli(['apikey', 'create', '--role', 'admin', '--name', 'ops'], env());
    assert.equal(out.code, 0, out.stderr);
    adminKey = out.stdout.trim();
    assert.match(adminKey, /^ptk_[0-9a-f]{8}_[A-Za-z0-9_-]{32}$/);
    assert.match(out.stderr, /shown only this once/);
  });

  it('answers `me` for a valid key', async () => {
    const res = await gql(server.url, '{ me { id name role } }', undefined, adminKey);
    assert.equal(res.errors, undefined);
    assert.equal(res.data.me.name, 'ops');
    assert.equal(res.data.me.role, 'ADMIN');
  });

  it('marks every GraphQL answer Cache-Control: no-store, errors included', async () => {
    for (const [query, key] of [['{ me { name } }', adminKey], ['{ me { name } }', undefined], ['{ nope }', adminKey]] as const) {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ query }),
      });
      await res.text();
      assert.equal(res.headers.get('cache-control'), 'no-store', `${query} (${key ? 'with' : 'without'} a key): HTTP ${res.status}`);
    }
  });

  it('refuses a missing or bad key with UNAUTHENTICATED', async () => {
    const none = await gql(server.url, '{ me { id } }');
    assert.equal(none.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    const bad = await gql(server.url, '{ me { id } }', undefined, 'ptk_00000000_' + 'x'.repeat(32));
    assert.equal(bad.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    const garbage = await gql(server.url, '{ me { id } }', undefined, 'not a key');
    assert.equal(garbage.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
  });

  it('refuses an operation outside the role with FORBIDDEN, and revocation takes effect at once', async () => {
    const created = await gql(
      server.url,
      'mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id role keyPrefix } } }',
      { i: { name: 'audit', role: 'AUDITOR' } },
      adminKey,
    );
    assert.equal(created.errors, undefined);
    const auditorKey: string = created.data.createApiKey.key;
    assert.ok(auditorKey.startsWith(created.data.createApiKey.apiKey.keyPrefix));

    const me = await gql(server.url, '{ me { role } }', undefined, auditorKey);
    assert.equal(me.data.me.role, 'AUDITOR');
    const forbidden = await gql(server.url, '{ apiKeys { edges { node { id } } } }', undefined, auditorKey);
    assert.equal(forbidden.errors?.[0].extensions?.code, 'FORBIDDEN');
    const forbiddenMutation = await gql(server.url, 'mutation { createApiKey(input: {name: "x", role: ADMIN}) { key } }', undefined, auditorKey);
    assert.equal(forbiddenMutation.errors?.[0].extensions?.code, 'FORBIDDEN');

    const listed = await gql(server.url, '{ apiKeys(first: 10) { edges { node { name } } pageInfo { hasNextPage } } }', undefined, adminKey);
    assert.deepEqual(listed.data.apiKeys.edges.map((e: any) => e.node.name).sort(), ['audit', 'ops']);

    const revoked = await gql(
      server.url,
      'mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { revokedAt } }',
      { i: { id: created.data.createApiKey.apiKey.id } },
      adminKey,
    );
    assert.ok(revoked.data.revokeApiKey.revokedAt);
    const after = await gql(server.url, '{ me { role } }', undefined, auditorKey);
    assert.equal(after.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
  });

  it('rejects a query costlier than the limit with QUERY_TOO_COSTLY', async () => {
    const costly = await gql(server.url, '{ apiKeys(first: 100) { edges { node { id name role keyPrefix createdAt } } } }', undefined, adminKey);
    assert.equal(costly.errors?.[0].extensions?.code, 'QUERY_TOO_COSTLY');
    assert.ok((costly.errors?.[0].extensions?.cost as number) > 300);
    const cheap = await gql(server.url, '{ apiKeys(first: 5) { edges { node { id } } } }', undefined, adminKey);
    assert.equal(cheap.errors, undefined);
    // Costs are remembered per document and per value of the variables they depend on: the same text
    // with a larger page is priced again, and the small page stays allowed after it.
    const page = 'query($n: Int, $after: String) { apiKeys(first: $n, after: $after) { edges { node { id name role keyPrefix createdAt } } } }';
    assert.equal((await gql(server.url, page, { n: 5 }, adminKey)).errors, undefined);
    assert.equal((await gql(server.url, page, { n: 100 }, adminKey)).errors?.[0].extensions?.code, 'QUERY_TOO_COSTLY');
    assert.equal((await gql(server.url, page, { n: 5, after: null }, adminKey)).errors, undefined);
    const hidden = 'query($show: Boolean!) { apiKeys(first: 100) @include(if: $show) { edges { node { id name role keyPrefix createdAt } } } me { name } }';
    assert.equal((await gql(server.url, hidden, { show: false }, adminKey)).errors, undefined);
    assert.equal((await gql(server.url, hidden, { show: true }, adminKey)).errors?.[0].extensions?.code, 'QUERY_TOO_COSTLY');
  });

  it('serves OpenTelemetry metrics in Prometheus format', async () => {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /# TYPE \w+ (histogram|counter|gauge)/);
    // Every request but probes and scrapes, by method and status (the requests of the tests before this one).
    assert.match(text, /^http_server_request_duration_count\{[^}]*http_request_method="POST"[^}]*http_response_status_code="200"[^}]*\} [1-9]/m);
    assert.match(text, /^http_server_request_duration_bucket\{[^}]*le="0.005"\}/m);
    assert.doesNotMatch(text, /http_request_method="GET"[^}]*http_response_status_code="200"/, 'probes and scrapes are not counted');
    // The runtime's health: event-loop delay percentiles (seconds, since the previous scrape: reported once
    // the loop has been sampled 5 times, 50 ms) and utilisation.
    const delayP99 = (t: string) => /^nodejs_eventloop_delay_p99(?:_seconds)?(?:\{[^}]*\})? (\S+)/m.exec(t);
    let p99 = delayP99(text);
    for (let i = 0; !p99 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      p99 = delayP99(await (await fetch(`${server.url}/metrics`)).text());
    }
    assert.ok(p99, 'event-loop delay p99 is exported');
    assert.ok(Number(p99[1]) > 0 && Number(p99[1]) < 5, `event-loop delay p99 ${p99[1]} s`);
    assert.match(text, /^nodejs_eventloop_utilization(_ratio)?(\{[^}]*\})? \S+/m);
    assert.doesNotMatch(text, new RegExp(adminKey));
  });

  it('plans privacy spending with privacyEstimate, spending nothing', async () => {
    const eps = await gql(server.url, '{ privacyEstimate(input: {delta: 1e-5, accountant: EXACT, events: [{type: GAUSSIAN, noiseMultiplier: 1}]}) { epsilon accountant noiseMultiplier } }', undefined, adminKey);
    assert.equal(eps.errors, undefined);
    assert.ok(Math.abs(eps.data.privacyEstimate.epsilon - 4.377178095681231) < 1e-8);
    assert.equal(eps.data.privacyEstimate.accountant, 'EXACT');
    const cal = await gql(server.url, '{ privacyEstimate(input: {delta: 1e-5, calibrate: {targetEpsilon: 1}}) { epsilon noiseMultiplier accountant } }', undefined, adminKey);
    assert.ok(Math.abs(cal.data.privacyEstimate.noiseMultiplier - 3.73) < 0.01, JSON.stringify(cal.data));
    assert.ok(cal.data.privacyEstimate.epsilon <= 1);
    const bad = await gql(server.url, '{ privacyEstimate(input: {delta: 2, events: [{type: GAUSSIAN, noiseMultiplier: 1}]}) { epsilon } }', undefined, adminKey);
    assert.equal(bad.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
    assert.match(bad.errors![0].message, /delta/);
    const both = await gql(server.url, '{ privacyEstimate(input: {delta: 1e-5}) { epsilon } }', undefined, adminKey);
    assert.equal(both.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
  });

  it('logs JSON lines with request ids and the caller\'s trace id, and never the key or the database password', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}`, 'x-request-id': 'trace-me-123', traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    assert.equal(res.headers.get('x-request-id'), 'trace-me-123');
    assert.equal(res.headers.get('etag'), null, 'no ETag is computed for GraphQL answers');
    await new Promise((r) => setTimeout(r, 200));
    const lines = server.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const access = lines.find((l) => l.requestId === 'trace-me-123' && l.msg === 'request');
    assert.ok(access, 'access line carries the request id');
    assert.equal(access.path, '/graphql');
    assert.equal(access.status, 200);
    assert.equal(access.traceId, traceId, 'the request continues the caller\'s W3C trace context');
    assert.match(access.caller ?? '', /^[0-9a-f-]{36}$/, 'the auth guard, deep in the request, names the caller in its context');
    const all = server.logs.join('\n');
    assert.doesNotMatch(all, new RegExp(adminKey));
    const password = new URL(db.url).password;
    if (password) assert.doesNotMatch(all, new RegExp(password));
  });

  it('answers a body that is not JSON, or too large, as GraphQL errors (BAD_REQUEST, PAYLOAD_TOO_LARGE), with a request id and an access line', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}`, 'x-request-id': 'not-json-1' },
      body: '{"query": { me { id } }',
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('x-request-id'), 'not-json-1');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
    assert.equal(body.errors[0].extensions.code, 'BAD_REQUEST');
    assert.match(body.errors[0].message, /not valid JSON/);

    // Refused from its Content-Length; the parser reads the rest off (unbuffered) before answering.
    const mb = Buffer.alloc(1 << 20, 0x20);
    const tooLarge = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(65 * mb.length), 'x-request-id': 'too-large-1' } }, (r) => {
        let text = '';
        r.on('data', (c: Buffer) => (text += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      void (async () => {
        for (let i = 0; i < 65; i++) if (!req.write(mb)) await new Promise((r) => req.once('drain', r));
        req.end();
      })();
    });
    assert.equal(tooLarge.status, 413);
    assert.equal(JSON.parse(tooLarge.body).errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');

    await new Promise((r) => setTimeout(r, 200));
    const access = server.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    assert.equal(access.find((l) => l.requestId === 'not-json-1')?.status, 400);
    assert.equal(access.find((l) => l.requestId === 'too-large-1')?.status, 413);
    const health = await fetch(`${server.url}/health/live`);
    assert.equal(health.status, 200, 'the server is still up');
  });

  it('runs worker replicas on the same database without a GraphQL endpoint', async () => {
    const worker = await startServer({ ...env(), PRIVATUNE_ROLE: 'worker' });
    try {
      await waitReady(worker.url);
      const res = await fetch(`${worker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ me { id } }"}' });
      assert.equal(res.status, 404);
      assert.equal((await fetch(`${worker.url}/metrics`)).status, 200);
      assert.ok(worker.logs.some((l) => /finetune worker started/.test(l)));
    } finally {
      assert.equal(await worker.stop('SIGTERM'), 0);
    }
  });

  it('drains on SIGTERM: readiness turns 503 while requests are still answered, with Connection: close; none is cut', async () => {
    const drained = await startServer({ ...env(), SHUTDOWN_DRAIN_MS: '3000' });
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const body = JSON.stringify({ query: '{ me { name } }' });
    const outcomes: Record<string, number> = {};
    const count = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
    let stopAt = Infinity;
    let closeAfterStop = 0;
    const post = () =>
      new Promise<boolean>((resolve) => {
        const req = httpRequest(`${drained.url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` } }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            count(res.statusCode === 200 && JSON.parse(text).data?.me?.name === 'ops' ? 'answered' : `HTTP ${res.statusCode} ${text.slice(0, 100)}`);
            if (Date.now() > stopAt && res.headers.connection === 'close') closeAfterStop++;
            resolve(true);
          });
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          count(err.code ?? err.message);
          resolve(false);
        });
        req.end(body);
      });
    // Keep-alive clients behind a load balancer that stops routing here once readiness fails.
    let routed = true;
    const clients = Array.from({ length: 16 }, async () => {
      while (routed && (await post()));
    });
    await new Promise((r) => setTimeout(r, 800));
    stopAt = Date.now();
    const exited = drained.stop('SIGTERM');
    let sawDraining = false;
    for (let i = 0; i < 40 && !sawDraining; i++) {
      const ready = await fetch(`${drained.url}/health/ready`, { headers: { connection: 'close' } }).catch(() => undefined);
      sawDraining = ready?.status === 503 && ((await ready.json()) as any).checks.shutdown !== undefined;
      if (!sawDraining) await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 200)); // the balancer notices a little later
    routed = false;
    await Promise.all(clients);
    agent.destroy();
    assert.equal(await exited, 0);
    assert.ok(sawDraining, 'readiness reported the drain');
    assert.ok(outcomes.answered > 16, JSON.stringify(outcomes));
    assert.ok(closeAfterStop > 0, 'requests sent during the drain are answered, asking clients to close');
    assert.deepEqual(Object.keys(outcomes), ['answered'], `every request answered, none refused or cut: ${JSON.stringify(outcomes)}`);
  });

  it('stops cleanly on SIGTERM and starts again on the same data (here with a depth limit of 3)', async () => {
    const code = await server.stop('SIGTERM');
    assert.equal(code, 0);
    server = await startServer({ ...env(), GRAPHQL_MAX_DEPTH: '3' });
    await waitReady(server.url);
    const res = await gql(server.url, '{ me { name } }', undefined, adminKey);
    assert.equal(res.data.me.name, 'ops');
  });

  it('rejects a query deeper than the limit with QUERY_TOO_DEEP, fragments included', async () => {
    const deep = await gql(server.url, '{ apiKeys { edges { node { id } } } }', undefined, adminKey);
    assert.equal(deep.errors?.[0].extensions?.code, 'QUERY_TOO_DEEP');
    assert.equal(deep.data ?? null, null);
    const viaFragment = await gql(server.url, '{ ...Q } fragment Q on Query { apiKeys { edges { ...E } } } fragment E on ApiKeyEdge { node { id } }', undefined, adminKey);
    assert.equal(viaFragment.errors?.[0].extensions?.code, 'QUERY_TOO_DEEP');
    const shallow = await gql(server.url, '{ apiKeys { pageInfo { hasNextPage } } }', undefined, adminKey);
    assert.equal(shallow.errors, undefined);
  });
});
