/**
 * One trace follows a finetune from the GraphQL mutation through the queue (trace context stored with the
 * job), feature extraction, head training and the ledger commit. Spans are exported over OTLP/HTTP to a
 * stub collector on localhost.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, TestDatabase } from '../support/database';
import { writeSyntheticIdx } from '../support/idx';
import { gql, runCli, ServerProcess, startServer, waitReady } from '../support/server';

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

describe('finetune tracing', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let collector: Server;
  let dir: string;
  const spans: Span[] = [];

  before(async () => {
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const doc = JSON.parse(body);
          for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    dir = await mkdtemp(join(tmpdir(), 'privatune-trace-'));
    await writeSyntheticIdx(join(dir, 'train'), 300);
    db = await createTestDatabase();
    const port = (collector.address() as AddressInfo).port;
    server = await startServer({
      DATABASE_URL: db.url,
      ARTIFACT_DIR: join(dir, 'artifacts'),
      JOB_POLL_MS: '200',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    await waitReady(server.url);
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await db?.drop();
    collector?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('carries the mutation\'s trace into the worker: extraction, training and commit share its trace id', async () => {
    const admin = (await runCli(['apikey', 'create', '--role', 'admin', '--name', 'root'], { DATABASE_URL: db.url })).stdout.trim();
    const reg = await gql(
      server.url,
      `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { ... on Dataset { id } } }`,
      { i: { name: 'traced', format: 'IDX', location: join(dir, 'train'), declaredSize: 300, epsilonLimit: 5, delta: 1e-5 } },
      admin,
    );
    const datasetId = reg.data.registerDataset.id;
    const req = await gql(server.url, `mutation($i: RequestFinetuneInput!) { requestFinetune(input: $i) { ... on FinetuneJob { id } } }`, { i: { datasetId, noiseMultiplier: 5 } }, admin);
    const jobId = req.data.requestFinetune.id;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const job = (await gql(server.url, `query($id: ID!) { finetuneJob(id: $id) { status error } }`, { id: jobId }, admin)).data.finetuneJob;
      if (job.status === 'SUCCEEDED') break;
      assert.notEqual(job.status, 'FAILED', job.error);
      assert.ok(Date.now() < deadline, 'job did not finish');
      await new Promise((r) => setTimeout(r, 200));
    }
    let jobSpan: Span | undefined;
    while (!(jobSpan = spans.find((s) => s.name === 'finetune.job'))) {
      assert.ok(Date.now() < deadline, 'no finetune.job span exported');
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const trace = spans.filter((s) => s.traceId === jobSpan!.traceId);
    const names = new Set(trace.map((s) => s.name));
    for (const name of ['finetune.job', 'finetune.extract_features', 'finetune.train_head', 'finetune.commit']) assert.ok(names.has(name), `${name} in the trace`);
    assert.ok(trace.some((s) => /requestFinetune|POST/.test(s.name)), `the mutation is in the same trace: ${[...names].join(', ')}`);
    const commit = trace.find((s) => s.name === 'finetune.commit')!;
    assert.ok(trace.some((s) => s.parentSpanId === commit.spanId), 'the ledger commit\'s SQL runs inside the commit span');
  });

  it('continues a caller\'s W3C trace context in a server span per request, with method and status', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${parent}-01` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(res.status, 200);
    const deadline = Date.now() + 10_000;
    let span: Span | undefined;
    while (!(span = spans.find((s) => s.traceId === traceId && s.parentSpanId === parent))) {
      assert.ok(Date.now() < deadline, 'no server span exported for the request');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(span.name, 'POST');
    assert.equal(span.kind, 2, 'SERVER');
    const attr = (k: string) => span!.attributes?.find((a) => a.key === k)?.value;
    assert.equal(attr('http.request.method')?.stringValue, 'POST');
    assert.equal(attr('url.path')?.stringValue, '/graphql');
    assert.equal(Number(attr('http.response.status_code')?.intValue), 200);
    assert.equal(span.attributes?.some((a) => /authorization|header/i.test(a.key)), false, 'no headers recorded');
  });
});
