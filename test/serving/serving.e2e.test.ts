/**
 * Model serving end to end over HTTP, on a real PostgreSQL and real images (Fashion-MNIST, or the mnist
 * package's digits): private finetunes produce two versions of a model; the registry shows their
 * guarantee and provenance; deploy, grant, classify held-out images (PNG and raw pixels) well above
 * chance without spending budget; concurrent requests share backbone passes and each gets its own
 * answer; aliases move atomically and take effect without restart, also on a second API replica that
 * only shares the database; bad input gets clear errors and the server stays up.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createTestDatabase, TestDatabase } from '../support/database';
import { writeRealSubset } from '../support/real-data';
import { gql, runCli, ServerProcess, startServer, waitReady } from '../support/server';

const N_TRAIN = 1500;
const N_TEST = 300;

const CLASSIFY = `query($i: ClassifyInput!) { classify(input: $i) {
  modelId modelName modelVersion privacyCost budgetCharged guarantee { epsilon delta }
  predictions { index labels { label classIndex probability } } } }`;
const MODEL_FIELDS = `id name version ref classNames createdAt publicAccuracy aliases
  guarantee { epsilon delta accountant noiseMultiplier clipNorm method noiseKind events { type noiseMultiplier count } }
  provenance { jobId dataset { id name fingerprint declaredSize } backbone { id name featureLayer inputSize featureDim pretrainedOn } }
  deployment { deployed deployedAt status error }`;

interface TestImages {
  pixels: Uint8Array[];
  labels: number[];
}

function readIdxTest(prefix: string): TestImages {
  const images = gunzipSync(readFileSync(`${prefix}-images-idx3-ubyte.gz`));
  const labels = gunzipSync(readFileSync(`${prefix}-labels-idx1-ubyte.gz`));
  const n = images.readUInt32BE(4);
  const pixels = Array.from({ length: n }, (_, i) => new Uint8Array(images.subarray(16 + i * 784, 16 + (i + 1) * 784)));
  return { pixels, labels: Array.from(labels.subarray(8, 8 + n)) };
}

/** Prometheus text: the value of a sample whose line starts with `prefix`, summed over matching lines. */
function metricSum(text: string, name: string, filter: (line: string) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (filter(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

describe('model serving end to end', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let replica: ServerProcess | undefined;
  let dir: string;
  let data: { train: string; test: string; source: string };
  let test: TestImages;
  let pngs: string[];
  let admin: string;
  let engineer: string;
  let client: string;
  let clientId: string;
  let stranger: string;
  let datasetId: string;
  const models: { v1?: string; v2?: string } = {};
  const env = () => ({ DATABASE_URL: db.url, ARTIFACT_DIR: join(dir, 'artifacts'), JOB_POLL_MS: '200', SERVING_SYNC_MS: '250' });
  const as = (key: string, q: string, v: Record<string, unknown> = {}, url = server.url) => gql(url, q, v, key);
  const classify = (key: string, input: Record<string, unknown>, url = server.url) => as(key, CLASSIFY, { i: input }, url);
  const png = (i: number) => ({ data: pngs[i] });
  const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;

  async function finetune(input: Record<string, unknown>): Promise<string> {
    const res = await as(
      engineer,
      `mutation($i: RequestFinetuneInput!) { requestFinetune(input: $i) { __typename ... on FinetuneJob { id } ... on ValidationError { message } ... on InsufficientBudgetError { remainingEpsilon } } }`,
      { i: { datasetId, ...input } },
    );
    assert.equal(res.data?.requestFinetune?.__typename, 'FinetuneJob', JSON.stringify(res));
    const id = res.data.requestFinetune.id;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const job = (await as(engineer, 'query($id: ID!) { finetuneJob(id: $id) { status error modelId } }', { id })).data.finetuneJob;
      if (job.status === 'SUCCEEDED') return job.modelId;
      assert.notEqual(job.status, 'FAILED', job.error);
      if (Date.now() > deadline) throw new Error(`job ${id} stuck`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  async function spent(): Promise<number> {
    return (await as(admin, 'query($id: ID!) { dataset(id: $id) { budget { epsilonSpent epsilonReserved } } }', { id: datasetId })).data.dataset.budget.epsilonSpent;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'privatune-serving-'));
    data = await writeRealSubset(join(dir, 'data'), N_TRAIN, N_TEST);
    test = readIdxTest(data.test);
    pngs = await Promise.all(test.pixels.map(async (p) => (await sharp(Buffer.from(p), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer()).toString('base64')));
    db = await createTestDatabase();
    server = await startServer(env());
    await waitReady(server.url);
    admin = (await runCli(['apikey', 'create', '--role', 'admin', '--name', 'root'], env())).stdout.trim();
    const key = async (name: string, role: string) => (await as(admin, `mutation { createApiKey(input: {name: "${name}", role: ${role}}) { key apiKey { id } } }`)).data.createApiKey;
    const eng = await key('engineer', 'ML_ENGINEER');
    engineer = eng.key;
    const cl = await key('client', 'INFERENCE_CLIENT');
    client = cl.key;
    clientId = cl.apiKey.id;
    stranger = (await key('stranger', 'INFERENCE_CLIENT')).key;
    const reg = await as(admin, `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { __typename ... on Dataset { id } ... on ValidationError { message } } }`, {
      i: { name: 'serving-train', format: 'IDX', location: data.train, declaredSize: N_TRAIN, epsilonLimit: 20, delta: 1e-5 },
    });
    datasetId = reg.data.registerDataset.id;
    await as(admin, 'mutation($i: DatasetGrantInput!) { grantDatasetAccess(input: $i) { id } }', { i: { datasetId, apiKeyId: eng.apiKey.id } });
    models.v1 = await finetune({ targetEpsilon: 8, modelName: 'fashion', publicEvaluation: { format: 'IDX', location: data.test } });
    models.v2 = await finetune({ method: 'SINGLE_STEP', noiseMultiplier: 5, modelName: 'fashion' });
  });

  after(async () => {
    await replica?.stop('SIGKILL');
    await server?.stop('SIGKILL');
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists versions with their guarantee and provenance; filters by dataset and backbone; hides ungranted models', async () => {
    const list = await as(engineer, `query($d: ID) { models(dataset: $d, backbone: "mobilenet_v2", first: 10) { edges { node { ${MODEL_FIELDS} } } pageInfo { hasNextPage } } }`, { d: datasetId });
    assert.equal(list.errors, undefined, JSON.stringify(list.errors));
    const nodes = list.data.models.edges.map((e: any) => e.node);
    assert.deepEqual(nodes.map((m: any) => m.ref), ['fashion@1', 'fashion@2']);
    const v1 = nodes[0];
    assert.equal(v1.id, models.v1);
    assert.equal(v1.classNames.length, 10);
    assert.ok(v1.guarantee.epsilon <= 8 && v1.guarantee.epsilon > 7.9, JSON.stringify(v1.guarantee));
    assert.equal(v1.guarantee.delta, 1e-5);
    assert.equal(v1.guarantee.method, 'LEAST_SQUARES');
    assert.equal(v1.guarantee.noiseKind, 'csprng');
    assert.ok(v1.guarantee.clipNorm > 0 && v1.guarantee.noiseMultiplier > 0 && v1.guarantee.accountant);
    assert.equal(v1.provenance.dataset.id, datasetId);
    assert.equal(v1.provenance.dataset.name, 'serving-train');
    assert.match(v1.provenance.dataset.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(v1.provenance.backbone.id, 'mobilenet_v2');
    assert.ok(v1.provenance.backbone.pretrainedOn.length > 0);
    assert.ok(v1.provenance.jobId);
    assert.ok(v1.publicAccuracy > 0.4);
    assert.deepEqual(v1.deployment, { deployed: false, deployedAt: null, status: 'NOT_DEPLOYED', error: null });
    assert.equal(nodes[1].guarantee.method, 'SINGLE_STEP');

    const other = await as(engineer, '{ models(dataset: "00000000-0000-4000-8000-000000000000") { edges { node { id } } } }');
    assert.deepEqual(other.data.models.edges, []);
    const byName = await as(admin, `query { model(id: "fashion") { ref } v1: model(id: "fashion@v1") { id } }`);
    assert.equal(byName.data.model.ref, 'fashion@2', 'a bare name is the highest version');
    assert.equal(byName.data.v1.id, models.v1);
    assert.deepEqual((await as(client, '{ models { edges { node { id } } } }')).data.models.edges, [], 'no grant, no models');
    assert.equal(code(await as(client, `{ model(id: "${models.v1}") { id } }`)), 'FORBIDDEN');
    assert.equal(code(await as(admin, '{ model(id: "nope@3") { id } }')), 'MODEL_NOT_FOUND');
  });

  it('refuses classification of undeployed, unknown and ungranted models with clear codes', async () => {
    assert.equal(code(await classify(admin, { model: 'fashion@1', images: [png(0)] })), 'MODEL_NOT_DEPLOYED');
    assert.equal(code(await classify(admin, { model: models.v1, images: [png(0)] })), 'MODEL_NOT_DEPLOYED');
    assert.equal(code(await classify(admin, { model: 'fashion@7', images: [png(0)] })), 'MODEL_NOT_FOUND');
    assert.equal(code(await classify(admin, { model: 'no-such-model', images: [png(0)] })), 'MODEL_NOT_FOUND');
    assert.equal(code(await classify(admin, { model: 'fashion@production', images: [png(0)] })), 'MODEL_NOT_FOUND');
    assert.equal(code(await classify(client, { model: 'fashion@1', images: [png(0)] })), 'FORBIDDEN');
    assert.equal(code(await classify(engineer, { model: 'fashion@1', images: [png(0)] })), 'FORBIDDEN', 'ml_engineer keys do not classify');
  });

  it('deploys (warmed up before it is ready), reports per-model readiness, and only for permitted keys', async () => {
    assert.equal(code(await as(client, 'mutation { deployModel(input: { model: "fashion@1" }) { id } }')), 'FORBIDDEN');
    const res = await as(engineer, `mutation { deployModel(input: { model: "fashion@1" }) { ${MODEL_FIELDS} } }`);
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    assert.equal(res.data.deployModel.deployment.deployed, true);
    assert.equal(res.data.deployModel.deployment.status, 'READY');
    const ready = (await (await fetch(`${server.url}/health/ready`)).json()) as any;
    assert.equal(ready.status, 'ok');
    assert.deepEqual(ready.checks.models.models, { 'fashion@1': 'ready' });
    if (process.platform === 'linux') {
      // The serving threads (one per core, at least 2 here: no SERVING_BACKBONE_THREADS) run at the default nice 10, the event loop at 0.
      const pid = server.child.pid!;
      const nice = readdirSync(`/proc/${pid}/task`).map((tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]));
      assert.ok(nice.filter((n) => n === 10).length >= Math.min(4, availableParallelism()), `thread nice values ${nice}`);
      assert.equal(getPriority(pid), 0, 'the main thread keeps its priority');
    }
    // On CPU, the pass of a request alone in the process runs on the event loop (the model's small input
    // passes in well under SERVING_INLINE_PASS_MAX_MS).
    const loaded = server.logs.find((l) => l.includes('"model ready"') && l.includes('fashion@1'));
    assert.match(loaded ?? '', /a lone request's pass inline/, `model ready log: ${loaded}`);
    const again = await as(engineer, 'mutation { deployModel(input: { model: "fashion@1" }) { deployment { status } } }');
    assert.equal(again.data.deployModel.deployment.status, 'READY', 'deploying twice is harmless');
  });

  it('classifies held-out images (PNG and raw pixels) well above chance, at no privacy cost', async (t) => {
    const grant = await as(admin, 'mutation($i: ModelGrantInput!) { grantModelAccess(input: $i) { modelName apiKeyId } }', { i: { modelName: 'fashion', apiKeyId: clientId } });
    assert.deepEqual(grant.data.grantModelAccess, { modelName: 'fashion', apiKeyId: clientId });
    const before = await spent();
    let correct = 0;
    const batch = 25;
    const requests: Promise<{ res: any; idx: number[] }>[] = [];
    for (let s = 0; s < N_TEST; s += batch) {
      if (requests.length % 4 === 0) await Promise.all(requests); // a few at a time: 300 images at once would exceed the queue bound
      const idx = Array.from({ length: Math.min(batch, N_TEST - s) }, (_, k) => s + k);
      // Alternate encodings: even batches as PNG, odd ones as raw gray pixels.
      const images = idx.map((i) => ((s / batch) % 2 === 0 ? png(i) : { data: Buffer.from(test.pixels[i]).toString('base64'), width: 28, height: 28, channels: 1 }));
      requests.push(classify(client, { model: 'fashion@1', images, topK: 3 }).then((res) => ({ res, idx })));
    }
    for (const { res, idx } of await Promise.all(requests)) {
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const out = res.data.classify;
      assert.equal(out.modelId, models.v1);
      assert.equal(out.privacyCost, 0);
      assert.equal(out.budgetCharged, false);
      assert.equal(out.predictions.length, idx.length);
      out.predictions.forEach((p: any, k: number) => {
        assert.equal(p.index, k);
        assert.equal(p.labels.length, 3);
        assert.ok(p.labels[0].probability >= p.labels[1].probability && p.labels[1].probability >= p.labels[2].probability);
        assert.ok(p.labels.reduce((s: number, l: any) => s + l.probability, 0) <= 1 + 1e-9);
        if (p.labels[0].classIndex === test.labels[idx[k]]) correct++;
      });
    }
    const accuracy = correct / N_TEST;
    t.diagnostic(`held-out accuracy ${accuracy.toFixed(3)} on ${N_TEST} ${data.source} images`);
    assert.ok(accuracy > 0.5, `held-out accuracy ${accuracy} on ${data.source} (chance 0.1)`);
    assert.equal(await spent(), before, 'inference spends no budget');
    const ledger = await as(admin, 'query($id: ID!) { dataset(id: $id) { ledger(first: 50) { edges { node { kind } } } } }', { id: datasetId });
    assert.ok(!ledger.data.dataset.ledger.edges.some((e: any) => /INFER|CLASSIF/i.test(e.node.kind)));
  });

  it('batches concurrent requests into fewer backbone passes, each caller getting its own answer', async (t) => {
    const n = 24;
    const alone: any[] = [];
    for (let i = 0; i < n; i++) alone.push((await classify(client, { model: 'fashion@1', images: [png(i)], topK: 10 })).data.classify.predictions[0].labels);
    // Batching needs the requests to meet in the queue; on a loaded machine a round can arrive so spread out
    // that every request finds the backbone idle (and runs at once, by design). Up to 3 rounds; every
    // caller's answer is checked in every round.
    let passes = n;
    let metricsAfter = '';
    for (let round = 1; round <= 3 && passes >= n; round++) {
      const metricsBefore = await (await fetch(`${server.url}/metrics`)).text();
      const together = await Promise.all(Array.from({ length: n }, (_, i) => classify(client, { model: 'fashion@1', images: [png(i)], topK: 10 })));
      metricsAfter = await (await fetch(`${server.url}/metrics`)).text();
      together.forEach((res, i) => {
        assert.equal(res.errors, undefined, JSON.stringify(res.errors));
        const labels = res.data.classify.predictions[0].labels;
        assert.deepEqual(labels.map((l: any) => l.classIndex), alone[i].map((l: any) => l.classIndex), `caller ${i}`);
        labels.forEach((l: any, k: number) => assert.ok(Math.abs(l.probability - alone[i][k].probability) < 1e-5));
      });
      passes = metricSum(metricsAfter, 'privatune_inference_batch_size_count') - metricSum(metricsBefore, 'privatune_inference_batch_size_count');
      const images = metricSum(metricsAfter, 'privatune_inference_batch_size_sum') - metricSum(metricsBefore, 'privatune_inference_batch_size_sum');
      assert.equal(images, n);
      t.diagnostic(`round ${round}: ${n} concurrent requests, ${passes} backbone passes`);
    }
    assert.ok(passes >= 1 && passes < n, `${passes} backbone passes for ${n} concurrent requests`);
    for (const name of ['privatune_inference_requests_total', 'privatune_inference_request_duration_seconds_bucket', 'privatune_inference_queue_time_seconds_count', 'privatune_inference_compute_time_seconds_count']) {
      assert.ok(metricsAfter.includes(name), `${name} in /metrics`);
    }
    assert.ok(metricSum(metricsAfter, 'privatune_inference_requests_total', (l) => l.includes('model="fashion"') && l.includes('outcome="ok"')) >= n * 2);
  });

  it('runs CPU passes of up to 4 images in engine runs of the size its serving threads ran fastest when the backbone loaded', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const limit = (which: string) => metricSum(metrics, 'privatune_serving_batch_limit', (l) => l.includes(`limit="${which}"`));
    assert.equal(limit('pass'), 4, 'SERVING_MAX_BATCH_SIZE=0 on CPU: 4');
    assert.ok([1, 2, 4].includes(limit('run')), `images per run: ${limit('run')}`);
    const ready = server.logs.find((l) => l.includes('"model ready"') && l.includes('fashion@1'));
    assert.match(ready ?? '', new RegExp(`${limit('run')} images? per run \\(images/s \\d+ at 1, \\d+ at 2, \\d+ at 4\\)`), ready);
  });

  it('exports every serving metric the provisioned Grafana dashboard queries', async () => {
    const dashboard = JSON.parse(readFileSync(join(__dirname, '../../../deploy/grafana/dashboards/privatune.json'), 'utf8'));
    const queried = new Set<string>(dashboard.panels.flatMap((p: any) => (p.targets ?? []).flatMap((t: any) => t.expr.match(/\bprivatune_(inference|serving)_[a-z0-9_]+/g) ?? [])));
    assert.ok(queried.size >= 8, [...queried].join(', '));
    const exported = new Set((await (await fetch(`${server.url}/metrics`)).text()).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]));
    for (const name of queried) assert.ok(exported.has(name), `${name} is exported`);
  });

  it('moves aliases atomically; a switch takes effect without restart', async () => {
    assert.equal(code(await as(engineer, 'mutation { setModelAlias(input: { model: "fashion@2", alias: "production" }) { ref } }')), 'MODEL_NOT_DEPLOYED');
    const bad = await as(engineer, 'mutation { setModelAlias(input: { model: "fashion@1", alias: "v2" }) { ref } }');
    assert.equal(code(bad), 'BAD_USER_INPUT');
    const set = await as(engineer, 'mutation { setModelAlias(input: { model: "fashion@1", alias: "production" }) { ref previousModelId model { ref aliases } } }');
    assert.deepEqual(set.data.setModelAlias, { ref: 'fashion@production', previousModelId: null, model: { ref: 'fashion@1', aliases: ['fashion@production'] } });
    assert.equal((await classify(client, { model: 'fashion@production', images: [png(0)] })).data.classify.modelVersion, 1);

    await as(engineer, 'mutation { deployModel(input: { model: "fashion@2" }) { id } }');
    assert.equal((await classify(client, { model: 'fashion', images: [png(0)] })).data.classify.modelVersion, 2, 'a bare name is the highest deployed version');
    const moved = await as(engineer, 'mutation { setModelAlias(input: { model: "fashion@2", alias: "production" }) { previousModelId model { id } } }');
    assert.deepEqual(moved.data.setModelAlias, { previousModelId: models.v1, model: { id: models.v2 } });
    const after = await classify(client, { model: 'fashion@production', images: [png(0), png(1)] });
    assert.equal(after.data.classify.modelId, models.v2);
    assert.equal(after.data.classify.predictions.length, 2);

    const undeploy = await as(engineer, 'mutation { undeployModel(input: { model: "fashion@2" }) { id } }');
    assert.equal(code(undeploy), 'CONFLICT', 'an alias points at it');
  });

  it('serves the same deployments from a second API replica and follows alias moves without restart', async () => {
    // This replica is told its engine run size instead of measuring it.
    replica = await startServer({ ...env(), PRIVATUNE_ROLE: 'api', SERVING_IMAGES_PER_RUN: '2' });
    await waitReady(replica.url, 60_000);
    const ready = (await (await fetch(`${replica.url}/health/ready`)).json()) as any;
    assert.deepEqual(ready.checks.models.models, { 'fashion@1': 'ready', 'fashion@2': 'ready' });
    const first = await classify(client, { model: 'fashion@production', images: [png(3)] }, replica.url);
    assert.equal(first.data?.classify.modelId, models.v2, JSON.stringify(first));
    const replicaMetrics = await (await fetch(`${replica.url}/metrics`)).text();
    assert.equal(metricSum(replicaMetrics, 'privatune_serving_batch_limit', (l) => l.includes('limit="run"')), 2, 'SERVING_IMAGES_PER_RUN=2');
    assert.ok(!replica.logs.some((l) => l.includes('per run (images/s')), 'nothing measured');

    // Moved through the first replica; the second sees it within a few sync periods.
    await as(engineer, 'mutation { setModelAlias(input: { model: "fashion@1", alias: "production" }) { ref } }');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await classify(client, { model: 'fashion@production', images: [png(3)] }, replica.url);
      if (res.data?.classify.modelId === models.v1) break;
      assert.ok(Date.now() < deadline, 'the replica did not follow the alias');
      await new Promise((r) => setTimeout(r, 100));
    }
    // Undeployed through the replica: refused on both.
    const undeploy = await as(engineer, 'mutation { undeployModel(input: { model: "fashion@2" }) { deployment { deployed status } } }', {}, replica.url);
    assert.deepEqual(undeploy.data.undeployModel.deployment, { deployed: false, status: 'NOT_DEPLOYED' });
    for (let i = 0; ; i++) {
      if (code(await classify(client, { model: 'fashion@2', images: [png(0)] })) === 'MODEL_NOT_DEPLOYED') break;
      assert.ok(i < 100, 'the first replica did not follow the undeploy');
      await new Promise((r) => setTimeout(r, 100));
    }
    // Grants are followed too.
    await as(admin, 'mutation($i: ModelGrantInput!) { revokeModelAccess(input: $i) }', { i: { modelName: 'fashion', apiKeyId: clientId } }, replica.url);
    for (let i = 0; ; i++) {
      if (code(await classify(client, { model: 'fashion@1', images: [png(0)] })) === 'FORBIDDEN') break;
      assert.ok(i < 100, 'the first replica did not follow the revocation');
      await new Promise((r) => setTimeout(r, 100));
    }
    await as(admin, 'mutation($i: ModelGrantInput!) { grantModelAccess(input: $i) { modelName } }', { i: { modelName: 'fashion', apiKeyId: clientId } });
  });

  it('serves on TF.js when BACKBONE_ENGINE=tfjs (the GPU path of tfjs-node-gpu hosts), with ONNX Runtime\'s answers', async () => {
    const tfjs = await startServer({ ...env(), PRIVATUNE_ROLE: 'api', BACKBONE_ENGINE: 'tfjs' });
    try {
      await waitReady(tfjs.url, 120_000);
      const ready = tfjs.logs.map((l) => JSON.parse(l.startsWith('{') ? l : '{}')).find((e) => e.msg === 'model ready' && e.model === 'fashion@1');
      assert.match(String(ready?.engine), /^tfjs\//, `fashion@1 ready on ${ready?.engine}`);
      const images = [0, 1, 2, 3, 4, 5].map(png);
      const [onTfjs, onOnnx] = await Promise.all([classify(client, { model: 'fashion@1', images, topK: 3 }, tfjs.url), classify(client, { model: 'fashion@1', images, topK: 3 })]);
      assert.equal(onTfjs.errors, undefined, JSON.stringify(onTfjs.errors));
      for (const [i, p] of onTfjs.data.classify.predictions.entries()) {
        const q = onOnnx.data.classify.predictions[i];
        assert.deepEqual(p.labels.map((l: { label: string }) => l.label), q.labels.map((l: { label: string }) => l.label), `image ${i}`);
        p.labels.forEach((l: { probability: number }, k: number) => assert.ok(Math.abs(l.probability - q.labels[k].probability) < 1e-3, `image ${i} label ${k}`));
      }
    } finally {
      await tfjs.stop('SIGKILL');
    }
  });

  it('answers bad input with clear BAD_USER_INPUT errors and stays up', async () => {
    const expectBad = async (input: Record<string, unknown>, reason: string, key = client) => {
      const res = await classify(key, { model: 'fashion@1', ...input });
      assert.equal(code(res), 'BAD_USER_INPUT', JSON.stringify(res));
      assert.equal(res.errors![0].extensions!.reason, reason, JSON.stringify(res.errors));
      return res;
    };
    await expectBad({ images: [{ data: '!!!not base64!!!' }] }, 'INVALID_BASE64');
    const corrupt = await expectBad({ images: [png(0), { data: pngs[1].slice(0, 40) + '*' + pngs[1].slice(41) }] }, 'INVALID_BASE64');
    assert.equal(corrupt.errors![0].extensions!.field, 'images[1]');
    await expectBad({ images: [{ data: Buffer.from('{"this": "is json, not an image"}').toString('base64') }] }, 'IMAGE_UNDECODABLE');
    const truncated = Buffer.from(pngs[2], 'base64').subarray(0, 60).toString('base64');
    await expectBad({ images: [{ data: truncated }] }, 'IMAGE_UNDECODABLE');
    const huge = await sharp({ create: { width: 5000, height: 4000, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
    await expectBad({ images: [{ data: huge.toString('base64') }] }, 'IMAGE_TOO_LARGE');
    await expectBad({ images: [{ data: Buffer.alloc(5 * 1024 * 1024, 7).toString('base64') }] }, 'IMAGE_TOO_LARGE');
    await expectBad({ images: [{ data: Buffer.alloc(10).toString('base64'), width: 28, height: 28, channels: 1 }] }, 'INVALID_RAW_PIXELS');
    await expectBad({ images: [] }, 'NO_IMAGES');
    await expectBad({ images: Array.from({ length: 33 }, (_, i) => png(i)) }, 'TOO_MANY_IMAGES');
    await expectBad({ images: [png(0)], topK: 0 }, 'INVALID_TOP_K');
    await expectBad({ model: 'bad model name!', images: [png(0)] }, 'INVALID_MODEL_REF');
    assert.equal(code(await classify(client, { model: 'missing@1', images: [png(0)] })), 'FORBIDDEN', 'no grant on an unknown name: nothing revealed');
    assert.equal(code(await classify(admin, { model: 'missing@1', images: [png(0)] })), 'MODEL_NOT_FOUND');

    const ok = await classify(client, { model: 'fashion@production', images: [png(5)], topK: 1 });
    assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
    assert.equal(ok.data.classify.predictions[0].labels.length, 1);
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
    assert.equal(server.child.exitCode, null);
  });
});
