/**
 * `privatune finetune ...`: scripted finetunes through the GraphQL API of a running platform.
 *
 *   finetune request --dataset ID (--target-epsilon E | --noise-multiplier S) [--method M] [--model-name N]
 *                    [--feature-layer L] [--input-size P] [--idempotency-key K] [--wait]
 *   finetune status JOB_ID [--wait]
 *
 * The platform is PRIVATUNE_URL (default http://localhost:3000) and the key PRIVATUNE_API_KEY (or --url,
 * --key). Prints the job as one JSON line; with --wait, progress goes to stderr until the job ends, and the
 * exit status is 0 only if it succeeded.
 */
import { parseArgs } from 'node:util';

export class CliUsageError extends Error {}

interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

const JOB_FIELDS = 'id status progress stage method modelName noiseMultiplier epsilon delta error errorCode modelId evaluation';

async function graphql(url: string, key: string, query: string, variables: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${url.replace(/\/+$/, '')}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  if (body.errors?.length) {
    const e = body.errors[0];
    throw new CliUsageError(`${e.extensions?.code ?? 'ERROR'}: ${e.message}`);
  }
  return body.data;
}

async function waitForJob(url: string, key: string, id: string, io: Io, pollMs = 500): Promise<any> {
  let last = '';
  for (;;) {
    const job = (await graphql(url, key, `query($id: ID!) { finetuneJob(id: $id) { ${JOB_FIELDS} } }`, { id })).finetuneJob;
    const line = `${job.status} ${(job.progress * 100).toFixed(0)}% ${job.stage}`;
    if (line !== last) io.stderr(`${line}\n`);
    last = line;
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function runFinetuneCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: sub === 'status',
    strict: true,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      dataset: { type: 'string' },
      'target-epsilon': { type: 'string' },
      'noise-multiplier': { type: 'string' },
      method: { type: 'string' },
      'model-name': { type: 'string' },
      'feature-layer': { type: 'string' },
      'input-size': { type: 'string' },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean' },
    },
  });
  const url = values.url ?? io.env.PRIVATUNE_URL ?? 'http://localhost:3000';
  const key = values.key ?? io.env.PRIVATUNE_API_KEY;
  if (!key) throw new CliUsageError('an API key is needed: --key or PRIVATUNE_API_KEY');
  const num = (name: 'target-epsilon' | 'noise-multiplier' | 'input-size'): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const v = Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new CliUsageError(`--${name} must be a positive number`);
    return v;
  };

  let job: any;
  if (sub === 'request') {
    if (!values.dataset) throw new CliUsageError('--dataset is required');
    const input: Record<string, unknown> = {
      datasetId: values.dataset,
      targetEpsilon: num('target-epsilon'),
      noiseMultiplier: num('noise-multiplier'),
      inputSize: num('input-size'),
      method: values.method?.toUpperCase(),
      modelName: values['model-name'],
      featureLayer: values['feature-layer'],
      idempotencyKey: values['idempotency-key'],
    };
    for (const k of Object.keys(input)) if (input[k] === undefined) delete input[k];
    const data = await graphql(
      url,
      key,
      `mutation($i: RequestFinetuneInput!) { requestFinetune(input: $i) { __typename
        ... on FinetuneJob { ${JOB_FIELDS} }
        ... on InsufficientBudgetError { message }
        ... on ValidationError { message field } } }`,
      { i: input },
    );
    const r = data.requestFinetune;
    if (r.__typename !== 'FinetuneJob') throw new CliUsageError(`${r.__typename}: ${r.message}`);
    job = r;
  } else if (sub === 'status') {
    if (positionals.length !== 1) throw new CliUsageError('finetune status takes one job id');
    job = (await graphql(url, key, `query($id: ID!) { finetuneJob(id: $id) { ${JOB_FIELDS} } }`, { id: positionals[0] })).finetuneJob;
  } else {
    throw new CliUsageError(`unknown finetune command "${sub ?? ''}"`);
  }
  if (values.wait) job = await waitForJob(url, key, job.id, io);
  io.stdout(`${JSON.stringify(job)}\n`);
  return !values.wait || job.status === 'SUCCEEDED' ? 0 : 1;
}
