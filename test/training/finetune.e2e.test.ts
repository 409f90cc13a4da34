/**
 * Private finetunes end to end: the real server (API + worker) over HTTP on a real PostgreSQL and real
 * images (Fashion-MNIST, or the mnist package's digits). Register, finetune with a target epsilon, the
 * job succeeds, the model is stored with its guarantee, the ledger is charged exactly the accountant's
 * epsilon of the recorded events; cached features, idempotency, budget refusal; and crashes of the worker
 * during extraction (reservation aborted) and after the noisy release (reservation committed).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { computeEpsilon, PrivacyEvent } from '../../src/privacy';
import { createTestDatabase, TestDatabase } from '../support/database';
import { writeRealSubset } from '../support/real-data';
import { gql, runCli, ServerProcess, startServer, waitReady } from '../support/server';

const N_TRAIN = 2000;
const DELTA = 1e-5;

const REQUEST = `mutation($i: RequestFinetuneInput!) { requestFinetune(input: $i) {
  __typename
  ... on FinetuneJob { id status method noiseMultiplier epsilon replayed reservationId events { type noiseMultiplier count } }
  ... on InsufficientBudgetError { requestedEpsilon remainingEpsilon }
  ... on ValidationError { field message code } } }`;
const JOB = `query($id: ID!) { finetuneJob(id: $id) { id status progress stage error errorCode modelId timings epsilon events { type noiseMultiplier samplingRate count } } }`;
const BUDGET = `query($id: ID!) { dataset(id: $id) { budget { epsilonSpent epsilonReserved epsilonRemaining accountant } } }`;

describe('private finetunes end to end', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let dir: string;
  let data: { train: string; test: string; source: string };
  let admin: string;
  let engineer: string;
  let engineerId: string;
  let datasetId: string;
  const env = () => ({ DATABASE_URL: db.url, ARTIFACT_DIR: join(dir, 'artifacts'), JOB_HEARTBEAT_MS: '1000', JOB_POLL_MS: '200' });
  const asEngineer = (q: string, v: Record<string, unknown>) => gql(server.url, q, v, engineer);

  async function waitJob(id: string, done: (j: any) => boolean, timeoutMs = 240_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await asEngineer(JOB, { id });
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const job = res.data.finetuneJob;
      if (done(job)) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} stuck: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  async function sql<T = any>(text: string, values: unknown[] = []): Promise<T[]> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(text, values)).rows;
    } finally {
      await c.end();
    }
  }
  async function register(name: string, location: string, n: number, epsilonLimit: number): Promise<string> {
    const res = await gql(
      server.url,
      `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { __typename ... on Dataset { id } ... on ValidationError { message } } }`,
      { i: { name, format: 'IDX', location, declaredSize: n, epsilonLimit, delta: DELTA } },
      admin,
    );
    assert.equal(res.data.registerDataset.__typename, 'Dataset', JSON.stringify(res.data));
    const id = res.data.registerDataset.id;
    await gql(server.url, 'mutation($i: DatasetGrantInput!) { grantDatasetAccess(input: $i) { id } }', { i: { datasetId: id, apiKeyId: engineerId } }, admin);
    return id;
  }
  const toEvents = (events: any[]): PrivacyEvent[] =>
    events.map((e) => (e.type === 'POISSON_SUBSAMPLED_GAUSSIAN'
      ? { type: 'poisson_subsampled_gaussian', noise_multiplier: e.noiseMultiplier, sampling_rate: e.samplingRate, count: e.count }
      : { type: 'gaussian', noise_multiplier: e.noiseMultiplier, count: e.count }));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'privatune-finetune-'));
    data = await writeRealSubset(join(dir, 'data'), N_TRAIN, 1000);
    db = await createTestDatabase();
    server = await startServer(env());
    await waitReady(server.url);
    admin = (await runCli(['apikey', 'create', '--role', 'admin', '--name', 'root'], env())).stdout.trim();
    const created = await gql(server.url, 'mutation { createApiKey(input: {name: "engineer", role: ML_ENGINEER}) { key apiKey { id } } }', {}, admin);
    engineer = created.data.createApiKey.key;
    engineerId = created.data.createApiKey.apiKey.id;
    datasetId = await register('train-subset', data.train, N_TRAIN, 6);
  });
  after(async () => {
    await server?.stop('SIGKILL');
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the tensor engine in health', async () => {
    const ready = (await (await fetch(`${server.url}/health/ready`)).json()) as any;
    assert.ok(['wasm', 'cpu', 'tensorflow'].includes(ready.checks.tensorEngine.backend), JSON.stringify(ready.checks));
  });

  it('finetunes with a target epsilon: job succeeds, model stored with its guarantee, ledger charged exactly', async () => {
    const req = await asEngineer(REQUEST, {
      i: { datasetId, targetEpsilon: 2, modelName: 'fashion-ls', publicEvaluation: { format: 'IDX', location: data.test }, idempotencyKey: 'ls-1' },
    });
    assert.equal(req.errors, undefined, JSON.stringify(req.errors));
    const queued = req.data.requestFinetune;
    assert.equal(queued.__typename, 'FinetuneJob', JSON.stringify(queued));
    assert.equal(queued.method, 'LEAST_SQUARES');
    assert.ok(queued.epsilon <= 2 && queued.epsilon > 1.99, `calibrated epsilon ${queued.epsilon}`);
    assert.deepEqual(queued.events, [{ type: 'GAUSSIAN', noiseMultiplier: queued.noiseMultiplier, count: 2 }]);

    const reserved = (await asEngineer(BUDGET, { id: datasetId })).data.dataset.budget;
    assert.ok(reserved.epsilonReserved > 0 || reserved.epsilonSpent > 0, 'the reservation exists as soon as the job does');

    const replay = await asEngineer(REQUEST, { i: { datasetId, targetEpsilon: 2, modelName: 'fashion-ls', publicEvaluation: { format: 'IDX', location: data.test }, idempotencyKey: 'ls-1' } });
    assert.equal(replay.data.requestFinetune.id, queued.id);
    assert.equal(replay.data.requestFinetune.replayed, true);

    const job = await waitJob(queued.id, (j) => ['SUCCEEDED', 'FAILED'].includes(j.status));
    assert.equal(job.status, 'SUCCEEDED', job.error);
    assert.equal(job.progress, 1);
    assert.ok(job.modelId);
    // The built-in backbone runs on ONNX Runtime: features were extracted in a thread, off the API's event loop.
    assert.equal(JSON.parse(job.timings).extractedInThread, 1);

    const [model] = await sql(`SELECT name, version, class_names, dim, octet_length(weights) AS bytes, guarantee, evaluation, backbone FROM models WHERE id = $1`, [job.modelId]);
    assert.equal(model.name, 'fashion-ls');
    assert.equal(model.version, 1);
    assert.equal(model.class_names.length, 10);
    assert.equal(model.bytes, 10 * model.dim * 8);
    assert.equal(model.backbone.featureLayer, 'block_13_expand_relu');
    assert.equal(model.backbone.inputSize, 96);
    const events = toEvents(job.events);
    const expected = computeEpsilon(events, DELTA, 'auto').epsilon;
    assert.ok(Math.abs(model.guarantee.epsilon - expected) < 1e-9);
    assert.ok(model.guarantee.epsilon <= 2);
    assert.equal(model.guarantee.noiseKind, 'csprng');
    assert.match(model.guarantee.datasetFingerprint, /^[0-9a-f]{64}$/);
    assert.equal(model.evaluation.public.charged, false);
    assert.ok(model.evaluation.public.accuracy > 0.4, `public test accuracy ${model.evaluation.public.accuracy} on ${data.source}`);
    assert.equal(model.evaluation.private, undefined, 'no private evaluation asked: nothing released about it');

    const budget = (await asEngineer(BUDGET, { id: datasetId })).data.dataset.budget;
    assert.equal(budget.epsilonReserved, 0);
    assert.ok(Math.abs(budget.epsilonSpent - expected) < 1e-9, `spent ${budget.epsilonSpent} vs accountant ${expected}`);
    assert.ok(budget.epsilonSpent <= 2);
    const ledger = await sql(`SELECT kind FROM ledger_entries WHERE dataset_id = $1 ORDER BY seq`, [datasetId]);
    assert.deepEqual(ledger.map((r) => r.kind), ['DATASET_REGISTERED', 'RESERVATION', 'COMMIT']);
  });

  it('reuses cached features for a second finetune on the same data (single step)', async () => {
    const req = await asEngineer(REQUEST, { i: { datasetId, method: 'SINGLE_STEP', noiseMultiplier: 8, modelName: 'fashion-ss' } });
    const job = await waitJob(req.data.requestFinetune.id, (j) => ['SUCCEEDED', 'FAILED'].includes(j.status));
    assert.equal(job.status, 'SUCCEEDED', job.error);
    assert.equal(JSON.parse(job.timings).featuresCached, 1);
    assert.equal(JSON.parse(job.timings).extractedInThread, 0);
    assert.deepEqual(job.events, [{ type: 'GAUSSIAN', noiseMultiplier: 8, samplingRate: null, count: 1 }]);
  });

  it('registers an ONNX backbone (admins only) and finetunes on it', async () => {
    const exportDir = join(dir, 'artifacts', 'backbones', 'mobilenet_v2');
    const exported = readdirSync(exportDir).filter((f) => f.startsWith('block_13_expand_relu-96px') && f.endsWith('.onnx'));
    assert.ok(exported.length >= 1, 'the built-in backbone was exported to ONNX');
    const REGISTER = `mutation($i: RegisterBackboneInput!) { registerBackbone(input: $i) { __typename ... on Backbone { id source featureLayers { name dim } } ... on ValidationError { field message } } }`;
    const input = {
      id: 'mnv2-b13-onnx', name: 'MobileNetV2 block 13 (ONNX export)', format: 'ONNX', path: join(exportDir, exported[0]),
      minSize: 96, maxSize: 96, defaultSize: 96, scale: 1 / 255, alignCorners: true,
      featureLayers: [{ name: 'features', node: 'features', dim: 576, pooling: 'NONE', defaultSize: 96 }], defaultFeatureLayer: 'features',
      origin: 'ONNX export of the built-in mobilenet_v2', pretrainedOn: 'ImageNet + nsfwjs public data',
    };
    const forbidden = await asEngineer(REGISTER, { i: input });
    assert.equal(forbidden.errors?.[0].extensions?.code, 'FORBIDDEN');
    const missing = await gql(server.url, REGISTER, { i: { ...input, path: join(dir, 'nope.onnx') } }, admin);
    assert.equal(missing.data.registerBackbone.__typename, 'ValidationError');
    const upper = await gql(server.url, REGISTER, { i: { ...input, id: 'Upper' } }, admin);
    assert.equal(upper.data.registerBackbone.field, 'id');
    const ok = await gql(server.url, REGISTER, { i: input }, admin);
    assert.deepEqual(ok.data.registerBackbone, { __typename: 'Backbone', id: 'mnv2-b13-onnx', source: 'onnx', featureLayers: [{ name: 'features', dim: 576 }] });
    const list = await asEngineer('{ backbones { id pretrainedOn } }', {});
    assert.deepEqual(list.data.backbones.map((b: any) => b.id), ['mobilenet_v2', 'mnv2-b13-onnx']);

    const req = await asEngineer(REQUEST, { i: { datasetId, backbone: 'mnv2-b13-onnx', method: 'SINGLE_STEP', noiseMultiplier: 8, modelName: 'onnx-backbone' } });
    const job = await waitJob(req.data.requestFinetune.id, (j) => ['SUCCEEDED', 'FAILED'].includes(j.status));
    assert.equal(job.status, 'SUCCEEDED', job.error);
  });

  it('evaluates on a private held-out split as a noisy count charged with the job', async () => {
    const before = (await asEngineer(BUDGET, { id: datasetId })).data.dataset.budget.epsilonSpent;
    const req = await asEngineer(REQUEST, { i: { datasetId, targetEpsilon: 1, modelName: 'with-private-eval', privateEvaluation: { fraction: 0.2 } } });
    const queued = req.data.requestFinetune;
    assert.equal(queued.__typename, 'FinetuneJob', JSON.stringify(queued));
    assert.equal(queued.events.length, 2);
    assert.deepEqual(queued.events[1], { type: 'GAUSSIAN', noiseMultiplier: 20, count: 1 });
    assert.ok(queued.epsilon <= 1 && queued.epsilon > 0.99, 'the target covers training and evaluation together');
    const job = await waitJob(queued.id, (j) => ['SUCCEEDED', 'FAILED'].includes(j.status));
    assert.equal(job.status, 'SUCCEEDED', job.error);
    const evaluation = JSON.parse((await asEngineer(`query($id: ID!) { finetuneJob(id: $id) { evaluation } }`, { id: queued.id })).data.finetuneJob.evaluation);
    assert.equal(evaluation.private.kind, 'private-holdout');
    assert.equal(evaluation.private.charged, true);
    assert.equal(evaluation.private.examples, N_TRAIN / 5);
    assert.ok(evaluation.private.accuracy > 0.3 && evaluation.private.accuracy <= 1, JSON.stringify(evaluation));
    const after = (await asEngineer(BUDGET, { id: datasetId })).data.dataset.budget.epsilonSpent;
    const committed = await sql(`SELECT events FROM reservations WHERE dataset_id = $1 AND status = 'COMMITTED'`, [datasetId]);
    const all = committed.flatMap((r) => r.events);
    assert.ok(Math.abs(after - computeEpsilon(all, DELTA, 'auto').epsilon) < 1e-9, 'spent = accountant over every committed release, evaluation included');
    assert.ok(after > before);
  });

  it('runs a finetune from the CLI (privatune finetune request --wait)', async () => {
    const cliEnv = { ...env(), PRIVATUNE_URL: server.url, PRIVATUNE_API_KEY: engineer };
    const out = await runCli(['finetune', 'request', '--dataset', datasetId, '--noise-multiplier', '10', '--method', 'single_step', '--model-name', 'from-cli', '--wait'], cliEnv);
    assert.equal(out.code, 0, out.stderr);
    const job = JSON.parse(out.stdout);
    assert.equal(job.status, 'SUCCEEDED');
    assert.equal(job.modelName, 'from-cli');
    assert.match(out.stderr, /SUCCEEDED 100%/);
    const status = await runCli(['finetune', 'status', job.id], cliEnv);
    assert.equal(JSON.parse(status.stdout).id, job.id);
    const refused = await runCli(['finetune', 'request', '--dataset', datasetId, '--target-epsilon', '50'], cliEnv);
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /InsufficientBudgetError/);
    const noKey = await runCli(['finetune', 'status', job.id], { ...cliEnv, PRIVATUNE_API_KEY: undefined });
    assert.equal(noKey.code, 2);
  });

  it('refuses a finetune that would exceed the budget, with nothing queued', async () => {
    const before = await sql(`SELECT count(*)::int AS n FROM finetune_jobs`);
    const res = await asEngineer(REQUEST, { i: { datasetId, targetEpsilon: 6 } }); // alone it uses the whole limit
    assert.equal(res.data.requestFinetune.__typename, 'InsufficientBudgetError');
    assert.ok(res.data.requestFinetune.remainingEpsilon < 6 - 2);
    const bad = await asEngineer(REQUEST, { i: { datasetId, targetEpsilon: 1, noiseMultiplier: 2 } });
    assert.equal(bad.data.requestFinetune.__typename, 'ValidationError');
    const layer = await asEngineer(REQUEST, { i: { datasetId, targetEpsilon: 1, featureLayer: 'nope' } });
    assert.equal(layer.data.requestFinetune.__typename, 'ValidationError');
    assert.equal(layer.data.requestFinetune.field, 'featureLayer');
    assert.deepEqual(await sql(`SELECT count(*)::int AS n FROM finetune_jobs`), before);
  });

  it('aborts the reservation when the worker is killed during extraction', async () => {
    const other = await writeRealSubset(join(dir, 'data-crash1'), 1500, 10, 2000);
    const id = await register('crash-during-extraction', other.train, 1500, 5);
    // 224 px, the 1280-d layer: extraction takes long enough to be interrupted.
    const req = await asEngineer(REQUEST, { i: { datasetId: id, targetEpsilon: 1, featureLayer: 'out_relu', inputSize: 224 } });
    const jobId = req.data.requestFinetune.id;
    await waitJob(jobId, (j) => j.status === 'EXTRACTING');
    await server.stop('SIGKILL');
    server = await startServer(env());
    const job = await waitJob(jobId, (j) => ['FAILED', 'SUCCEEDED'].includes(j.status), 60_000);
    assert.equal(job.status, 'FAILED');
    assert.equal(job.errorCode, 'WORKER_LOST');
    const [reservation] = await sql(`SELECT status, released FROM reservations WHERE id = (SELECT reservation_id FROM finetune_jobs WHERE id = $1)`, [jobId]);
    assert.deepEqual(reservation, { status: 'ABORTED', released: false });
    const budget = (await asEngineer(BUDGET, { id })).data.dataset.budget;
    assert.equal(budget.epsilonSpent, 0);
    assert.equal(budget.epsilonReserved, 0);
  });

  it('hands a job still extracting back to the queue when its worker is stopped (SIGTERM); the next worker finishes it, charged once', async () => {
    const other = await writeRealSubset(join(dir, 'data-stop1'), 1500, 10, 4000);
    const id = await register('stop-during-extraction', other.train, 1500, 5);
    const req = await asEngineer(REQUEST, { i: { datasetId: id, targetEpsilon: 1, featureLayer: 'out_relu', inputSize: 224 } });
    const jobId = req.data.requestFinetune.id;
    await waitJob(jobId, (j) => j.status === 'EXTRACTING' && j.progress > 0);
    assert.equal(await server.stop('SIGTERM'), 0, `a graceful stop; the server said:\n${server.logs.slice(-15).join('\n')}`);
    const [queued] = await sql(`SELECT status, worker_id, stage_detail FROM finetune_jobs WHERE id = $1`, [jobId]);
    assert.equal(queued.status, 'QUEUED');
    assert.equal(queued.worker_id, null);
    assert.match(queued.stage_detail, /queued again/);
    const [held] = await sql(`SELECT status, released FROM reservations WHERE id = (SELECT reservation_id FROM finetune_jobs WHERE id = $1)`, [jobId]);
    assert.deepEqual(held, { status: 'OPEN', released: false }, 'the budget stays held while the job waits');
    server = await startServer(env());
    const job = await waitJob(jobId, (j) => ['FAILED', 'SUCCEEDED'].includes(j.status));
    assert.equal(job.status, 'SUCCEEDED', JSON.stringify(job));
    const budget = (await asEngineer(BUDGET, { id })).data.dataset.budget;
    assert.ok(Math.abs(budget.epsilonSpent - computeEpsilon(toEvents(job.events), DELTA, 'auto').epsilon) < 1e-9, 'charged exactly once');
    assert.equal(budget.epsilonReserved, 0);
  });

  it('finishes a job past its noisy release before a stopping worker exits', async () => {
    await server.stop('SIGKILL');
    server = await startServer({ ...env(), TEST_PAUSE_AFTER_RELEASE_MS: '1500' });
    const req = await asEngineer(REQUEST, { i: { datasetId: await register('stop-after-release', data.train, N_TRAIN, 5), targetEpsilon: 1 } });
    const jobId = req.data.requestFinetune.id;
    const [{ reservation_id: reservationId }] = await sql(`SELECT reservation_id FROM finetune_jobs WHERE id = $1`, [jobId]);
    const deadline = Date.now() + 120_000;
    while (!(await sql(`SELECT released FROM reservations WHERE id = $1`, [reservationId]))[0].released) {
      assert.ok(Date.now() < deadline, 'release never happened');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await server.stop('SIGTERM'), 0, `a graceful stop; the server said:\n${server.logs.slice(-15).join('\n')}`);
    const [job] = await sql(`SELECT status, model_id FROM finetune_jobs WHERE id = $1`, [jobId]);
    assert.equal(job.status, 'SUCCEEDED');
    assert.ok(job.model_id);
    const [reservation] = await sql(`SELECT status FROM reservations WHERE id = $1`, [reservationId]);
    assert.equal(reservation.status, 'COMMITTED');
    server = await startServer(env());
  });

  it('commits the reservation when the worker is killed after the noisy release', async () => {
    await server.stop('SIGKILL');
    server = await startServer({ ...env(), TEST_PAUSE_AFTER_RELEASE_MS: '60000' });
    const req = await asEngineer(REQUEST, { i: { datasetId: await register('crash-after-release', data.train, N_TRAIN, 5), targetEpsilon: 1 } });
    const jobId = req.data.requestFinetune.id;
    const [{ reservation_id: reservationId, dataset_id: id }] = await sql(`SELECT reservation_id, dataset_id FROM finetune_jobs WHERE id = $1`, [jobId]);
    const deadline = Date.now() + 120_000;
    while (!(await sql(`SELECT released FROM reservations WHERE id = $1`, [reservationId]))[0].released) {
      assert.ok(Date.now() < deadline, 'release never happened');
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.stop('SIGKILL');
    // Still counted while nobody has resolved it.
    const held = (await gql((server = await startServer(env())).url, BUDGET, { id }, admin)).data.dataset.budget;
    assert.ok(held.epsilonReserved + held.epsilonSpent > 0.99);
    const job = await waitJob(jobId, (j) => j.status === 'FAILED', 60_000);
    assert.equal(job.errorCode, 'WORKER_LOST');
    const [reservation] = await sql(`SELECT status FROM reservations WHERE id = $1`, [reservationId]);
    assert.equal(reservation.status, 'COMMITTED');
    const budget = (await asEngineer(BUDGET, { id })).data.dataset.budget;
    const expected = computeEpsilon(toEvents(job.events), DELTA, 'auto').epsilon;
    assert.ok(Math.abs(budget.epsilonSpent - expected) < 1e-9, 'charged exactly once');
    assert.equal(budget.epsilonReserved, 0);
  });
});
