/**
 * The compliance dashboard in a real browser: the real server on a real PostgreSQL, headless Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core) with every request outside the platform refused.
 * An auditor signs in by keyboard, sees the datasets this test created with their budgets and limit
 * states, opens one by keyboard, sees the spend chart drawn by Chart.js with the ledger's points, the
 * ledger, its verification and the models, and downloads the CSV export. A screenshot of each page is
 * saved under test-results/.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BrowserContext, chromium, Page } from 'playwright-core';
import { computeEpsilon } from '../../src/privacy';
import { createTestDatabase, TestDatabase } from '../support/database';
import { writeSyntheticIdx } from '../support/idx';
import { gql, runCli, ServerProcess, startServer, waitReady } from '../support/server';

const ROOT = join(__dirname, '..', '..', '..');
const RESULTS = join(ROOT, 'test-results');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];
const DELTA = 1e-5;
const exactEps = (sigma: number, count = 1) => computeEpsilon([{ type: 'gaussian', noise_multiplier: sigma, count }], DELTA, 'exact').epsilon;
const gaussian = (sigma: number, count = 1) => ({ type: 'GAUSSIAN', noiseMultiplier: sigma, count });
/** Free text that must show as text, never run. */
// Browser globals inside page.evaluate callbacks (the test program is compiled without the DOM library).
declare const window: any;
declare const document: any;
declare const sessionStorage: any;
declare const localStorage: any;
declare const getComputedStyle: any;

const HOSTILE_PURPOSE = 'quarterly counts <img src=x onerror="window.__pwned=1"> & "quotes"';

describe('compliance dashboard in a browser', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let dir: string;
  let profile: string;
  let context: BrowserContext;
  let admin: string;
  let steward: string;
  let auditor: string;
  let engineer: string;
  const names = { fresh: 'dash-fresh', active: 'dash-active', near: 'dash-near', full: 'dash-full', trained: 'dash-trained' };
  const ids: Record<keyof typeof names, string> = { fresh: '', active: '', near: '', full: '', trained: '' };
  let job: any;
  const externalRequests: string[] = [];
  const browserErrors: string[] = [];
  const failedResponses: Promise<string>[] = [];

  async function call(query: string, variables: Record<string, unknown>, key = steward): Promise<any> {
    const res = await gql(server.url, query, variables, key);
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    return res.data;
  }
  async function register(name: string, epsilonLimit: number): Promise<string> {
    const data = await call(
      `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { __typename ... on Dataset { id } ... on ValidationError { message } } }`,
      { i: { name, format: 'IDX', location: join(dir, 'train'), declaredSize: 200, epsilonLimit, delta: DELTA, description: `Synthetic digits for ${name}` } },
    );
    assert.equal(data.registerDataset.__typename, 'Dataset', JSON.stringify(data));
    return data.registerDataset.id;
  }
  async function spend(mutation: 'recordPrivacyEvent' | 'reservePrivacyBudget', datasetId: string, events: unknown[], purpose: string): Promise<void> {
    const data = await call(
      `mutation($i: SpendBudgetInput!) { ${mutation}(input: $i) { __typename ... on InsufficientBudgetError { message } ... on ValidationError { message } } }`,
      { i: { datasetId, events, purpose } },
    );
    assert.equal(data[mutation].__typename, 'BudgetReservation', JSON.stringify(data));
  }
  async function createKey(role: string, name: string): Promise<{ key: string; id: string }> {
    const created = (await call('mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id } } }', { i: { name, role } }, admin)).createApiKey;
    return { key: created.key, id: created.apiKey.id };
  }
  /** A real private finetune (least squares on the built-in backbone), waited for. */
  async function finetune(datasetId: string, engineerId: string): Promise<any> {
    await call('mutation($i: DatasetGrantInput!) { grantDatasetAccess(input: $i) { id } }', { i: { datasetId, apiKeyId: engineerId } });
    const req = await call(
      `mutation($i: RequestFinetuneInput!) { requestFinetune(input: $i) { __typename ... on FinetuneJob { id } ... on InsufficientBudgetError { message } ... on ValidationError { message } } }`,
      { i: { datasetId, targetEpsilon: 1, modelName: 'digits-head' } },
      engineer,
    );
    assert.equal(req.requestFinetune.__typename, 'FinetuneJob', JSON.stringify(req));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const j = (await call('query($id: ID!) { finetuneJob(id: $id) { id status error modelId modelName epsilon delta noiseMultiplier method } }', { id: req.requestFinetune.id }, engineer)).finetuneJob;
      if (j.status === 'SUCCEEDED') return j;
      assert.ok(!['FAILED', 'CANCELLED'].includes(j.status), JSON.stringify(j));
      assert.ok(Date.now() < deadline, `finetune stuck: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  /** A fresh tab (sessionStorage is per tab, so it starts signed out). */
  async function newPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (msg) => {
      // Failed responses are checked one by one below, with what was asked.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) browserErrors.push(`console: ${msg.text()}`);
    });
    page.on('response', (res) => {
      if (res.status() < 400) return;
      const operation = /^query (\w+)/.exec(res.request().postDataJSON()?.query ?? '')?.[1];
      failedResponses.push(
        res.json().then((body) => `${res.status()} ${operation ?? res.url()} ${body?.errors?.[0]?.extensions?.code}`, () => `${res.status()} ${res.url()}`),
      );
    });
    page.on('pageerror', (err) => browserErrors.push(`page error: ${err.message}`));
    return page;
  }
  /** Presses Tab until the focused element matches, as a keyboard user would. */
  async function tabTo(page: Page, matches: (el: any) => boolean, max = 25): Promise<void> {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(`(${matches.toString()})(document.activeElement)`)) return;
    }
    throw new Error(`not reached with ${max} presses of Tab: ${matches.toString()}`);
  }
  async function signIn(page: Page, key: string): Promise<void> {
    await page.goto(`${server.url}/dashboard`);
    await tabTo(page, (el) => el.id === 'api-key');
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'privatune-dashboard-'));
    profile = join(dir, 'chromium-profile');
    await writeSyntheticIdx(join(dir, 'train'), 200);
    db = await createTestDatabase();
    server = await startServer({ DATABASE_URL: db.url, ARTIFACT_DIR: join(dir, 'artifacts'), JOB_POLL_MS: '200' });
    await waitReady(server.url);
    const cli = await runCli(['apikey', 'create', '--role', 'admin', '--name', 'root'], { DATABASE_URL: db.url });
    assert.equal(cli.code, 0, cli.stderr);
    admin = cli.stdout.trim();
    steward = (await createKey('DATA_STEWARD', 'Stella Steward')).key;
    auditor = (await createKey('AUDITOR', 'Audrey Auditor')).key;
    const engineerKey = await createKey('ML_ENGINEER', 'Emil Engineer');
    engineer = engineerKey.key;

    ids.fresh = await register(names.fresh, 8);
    ids.active = await register(names.active, 8);
    await spend('recordPrivacyEvent', ids.active, [gaussian(4)], HOSTILE_PURPOSE);
    await spend('recordPrivacyEvent', ids.active, [gaussian(3, 2)], 'published DP histogram');
    await spend('recordPrivacyEvent', ids.active, [{ type: 'POISSON_SUBSAMPLED_GAUSSIAN', noiseMultiplier: 1.1, samplingRate: 0.05, count: 50 }], 'DP-SGD outside the platform');
    await spend('reservePrivacyBudget', ids.active, [gaussian(5)], 'survey release next week');
    // 90% and 99.5% of the limit used: near and at the limit.
    ids.near = await register(names.near, exactEps(2) / 0.9);
    await spend('recordPrivacyEvent', ids.near, [gaussian(2)], 'one big release');
    ids.full = await register(names.full, exactEps(2) / 0.995);
    await spend('recordPrivacyEvent', ids.full, [gaussian(2)], 'the only release');
    ids.trained = await register(names.trained, 8);
    const t0 = Date.now();
    job = await finetune(ids.trained, engineerKey.id);
    console.log(`# finetune took ${Date.now() - t0} ms`);
    // More datasets than one model-count query covers.
    for (let i = 1; i <= 6; i++) await register(`dash-extra-${i}`, 4);

    await mkdir(RESULTS, { recursive: true });
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      acceptDownloads: true,
      viewport: { width: 1280, height: 900 },
    });
    // Offline: anything not served by the platform is refused (and noted).
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(server.url) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
      externalRequests.push(url);
      return route.abort();
    });
  });

  after(async () => {
    await context?.close();
    await server?.stop('SIGKILL');
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves its files without a key, from the platform, with a strict content security policy', async () => {
    const page = await fetch(`${server.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script type="module" src="\/dashboard\/app.js">/);
    assert.doesNotMatch(html, /https?:\/\//, 'no asset from elsewhere');
    const js = await fetch(`${server.url}/dashboard/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    const css = await fetch(`${server.url}/dashboard/app.css`);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    const chartJs = await fetch(`${server.url}/dashboard/vendor/chart.umd.min.js`);
    assert.equal(chartJs.status, 200);
    assert.match(await chartJs.text(), /Chart\.js v4/);
    const etag = js.headers.get('etag');
    assert.ok(etag);
    assert.equal((await fetch(`${server.url}/dashboard/app.js`, { headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } })).status, 304);
    assert.equal((await fetch(`${server.url}/dashboard/nothing.js`)).status, 404);
    assert.equal((await fetch(`${server.url}/dashboard/..%2Fpackage.json`)).status, 404);
  });

  it('refuses keys that are invalid or lack the auditor or admin role', async () => {
    const page = await newPage();
    await signIn(page, 'ptk_not_a_real_key');
    await page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    await page.fill('#api-key', engineer);
    await page.press('#api-key', 'Enter');
    await page.getByRole('alert').filter({ hasText: 'needs an auditor or admin key' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'nothing stored');
    await page.close();
  });

  it('signs in by keyboard, shows every dataset with its budget, models and limit state', async () => {
    const page = await newPage();
    await signIn(page, auditor);
    const table = page.locator('table#datasets');
    await table.waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('privatune.apiKey')), auditor, 'key kept in the tab');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'and nowhere else');
    assert.match(await page.locator('#who').innerText(), /Audrey Auditor \(auditor\)/);

    const rows = table.locator('tbody tr');
    assert.equal(await rows.count(), 11);
    for (const [k, name] of Object.entries(names)) {
      const row = table.locator(`tr[data-dataset-id="${ids[k as keyof typeof names]}"]`);
      assert.equal(await row.locator('th a').innerText(), name);
    }
    const state = (k: keyof typeof names) => table.locator(`tr[data-dataset-id="${ids[k]}"]`).getAttribute('data-state');
    assert.equal(await state('fresh'), 'ok');
    assert.equal(await state('active'), 'ok');
    assert.equal(await state('near'), 'near');
    assert.equal(await state('full'), 'at');
    assert.match(await table.locator(`tr[data-dataset-id="${ids.near}"]`).innerText(), /Near limit/);
    assert.match(await table.locator(`tr[data-dataset-id="${ids.full}"]`).innerText(), /At limit/);
    assert.match(await page.locator('.summary').innerText(), /11 datasets\s+1 near limit\s+1 at limit/);

    // Numbers agree with the API.
    const budget = (await call(`query($id: ID!) { dataset(id: $id) { budget { epsilonSpent epsilonReserved epsilonRemaining } } }`, { id: ids.active }, auditor)).dataset.budget;
    const activeCells = await table.locator(`tr[data-dataset-id="${ids.active}"] td.num`).allInnerTexts();
    assert.deepEqual(activeCells.slice(0, 3), [budget.epsilonSpent.toFixed(3), budget.epsilonReserved.toFixed(3), budget.epsilonRemaining.toFixed(3)]);
    assert.ok(budget.epsilonReserved > 0);
    const bar = table.locator(`tr[data-dataset-id="${ids.active}"] .budget-bar`);
    assert.match((await bar.getAttribute('aria-label')) ?? '', /^Spent ε \d/);

    // Model counts arrive (in two queries): one model was trained, on dash-trained (oldest first).
    await page.waitForFunction(() => [...document.querySelectorAll('td[data-models]')].every((td: any) => /^\d+$/.test(td.textContent ?? '')));
    assert.deepEqual(await table.locator('td[data-models]').allInnerTexts(), ['0', '0', '0', '0', '1', '0', '0', '0', '0', '0', '0']);
    await page.screenshot({ path: join(RESULTS, 'dashboard-overview.png'), fullPage: true });

    // Keyboard: Tab reaches the dataset's link (with a visible focus style), Enter opens it.
    await tabTo(page, (el) => el.tagName === 'A' && el.textContent === 'dash-active');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'focused link shows an outline');
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: names.active }).waitFor();
    assert.equal(new URL(page.url()).hash, `#/datasets/${ids.active}`);
    await page.close();
  });

  it('shows a dataset: spend chart with the ledger data, ledger, verification, models, CSV export', async () => {
    const page = await newPage();
    await signIn(page, auditor);
    await page.locator('table#datasets').waitFor();
    await page.click(`a[href="#/datasets/${ids.active}"]`);
    await page.locator('h1', { hasText: names.active }).waitFor();
    // 1 registration + 3 releases + 1 reservation.
    const entries = 5;

    // The chart: Chart.js drew the ledger's points on the canvas.
    await page.waitForFunction(() => {
      const canvas = document.getElementById('spend-chart');
      return !!canvas && !!window.Chart?.getChart(canvas);
    });
    const chart = await page.evaluate(() => {
      const canvas = document.getElementById('spend-chart');
      const c = window.Chart.getChart(canvas);
      const ctx = canvas.getContext('2d');
      const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
      return { labels: c.data.datasets.map((d: any) => d.label), spent: c.data.datasets[0].data.map((p: any) => p.y), painted, width: canvas.width };
    });
    assert.deepEqual(chart.labels, ['Spent ε', 'Spent + reserved ε', 'Limit ε']);
    assert.equal(chart.spent.length, entries + 1, 'one point per ledger entry, and now');
    assert.equal(chart.spent[0], 0);
    assert.ok(chart.spent[3] > chart.spent[1], 'spend grows');
    assert.ok(chart.width > 300 && chart.painted > 5000, `canvas is drawn (${chart.painted} pixels)`);

    // Verification and ledger.
    assert.equal(await page.locator('#verification').getAttribute('data-valid'), 'true');
    assert.match(await page.locator('#verification').innerText(), /verified: 5 entries/);
    const ledgerRows = page.locator('table#ledger tbody tr');
    assert.equal(await ledgerRows.count(), entries);
    assert.deepEqual(await page.locator('table#ledger tbody tr td:nth-child(3)').allInnerTexts(),
      ['DATASET_REGISTERED', 'EXTERNAL_RELEASE', 'EXTERNAL_RELEASE', 'EXTERNAL_RELEASE', 'RESERVATION']);
    const second = await ledgerRows.nth(1).innerText();
    assert.ok(second.includes(HOSTILE_PURPOSE), 'free text shown as text');
    assert.match(second, /Stella Steward/);
    assert.match(await ledgerRows.nth(2).innerText(), /Gaussian σ=3 ×2/);
    assert.match(await ledgerRows.nth(3).innerText(), /Subsampled Gaussian σ=1\.1 q=0\.05 ×50/);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'and never run');
    assert.equal(await page.locator('table#ledger img').count(), 0);

    // Models: none trained on this dataset.
    assert.match(await page.locator('#models-status').innerText(), /No models have been trained/);

    // CSV export downloads the whole ledger.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="CSV"]')]);
    assert.equal(download.suggestedFilename(), `ledger-${names.active}.csv`);
    const csv = await readFile((await download.path())!, 'utf8');
    const lines = csv.trimEnd().split('\n');
    assert.match(lines[0], /^seq,created_at,kind,requester,purpose,events,epsilon_limit,epsilon_spent,epsilon_reserved/);
    assert.equal(lines.length, 1 + entries);
    assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), ['1', '2', '3', '4', '5']);
    assert.match(lines[2], /EXTERNAL_RELEASE,Stella Steward,"quarterly counts <img/);
    assert.match(lines[5], /RESERVATION/);
    // JSON export too.
    const [json] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="JSON"]')]);
    const doc = JSON.parse(await readFile((await json.path())!, 'utf8'));
    assert.equal(doc.entries.length, entries);
    assert.equal(doc.dataset.id, ids.active);
    await page.locator('[role="status"]', { hasText: `Downloaded ledger-${names.active}.json` }).waitFor();

    await page.screenshot({ path: join(RESULTS, 'dashboard.png'), fullPage: true });

    // Back to the overview, then sign out: the key is forgotten.
    await page.click('a.back');
    await page.locator('table#datasets').waitFor();
    await page.click('#sign-out');
    await page.locator('#api-key').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.close();
  });

  it('lists the models trained on a dataset with their guarantees', async () => {
    const page = await newPage();
    await signIn(page, auditor);
    await page.locator('table#datasets').waitFor();
    await page.click(`a[href="#/datasets/${ids.trained}"]`);
    const models = page.locator('table#models');
    await models.waitFor();
    const row = models.locator('tbody tr');
    assert.equal(await row.count(), 1);
    assert.equal(await row.getAttribute('data-model-id'), job.modelId);
    const cells = await row.locator('th, td').allInnerTexts();
    assert.equal(cells[0], job.modelName);
    assert.equal(cells[2], job.epsilon.toFixed(3));
    assert.equal(cells[3], '1e-5');
    assert.match(cells[7], /least.?squares/i);
    // From the model registry (`models` query) when the platform has it, else from finetune jobs.
    const fromJobs = (await page.getByText('From finished finetune jobs').count()) > 0;
    console.log(`# models read from ${fromJobs ? 'finetune jobs (no model registry query)' : 'the model registry'}`);
    if (!fromJobs) {
      assert.equal(cells[1], '1', 'version');
      assert.notEqual(cells[4], '—', 'accountant');
      assert.equal(cells[6], '1', 'clip norm');
    }
    // The finetune's charge is in the ledger and on the chart: registration, reservation, commit.
    assert.deepEqual(await page.locator('table#ledger tbody tr td:nth-child(3)').allInnerTexts(), ['DATASET_REGISTERED', 'RESERVATION', 'COMMIT']);
    await page.screenshot({ path: join(RESULTS, 'dashboard-models.png'), fullPage: true });
    await page.close();
  });

  it('asked nothing of the internet and logged no browser errors', async () => {
    assert.deepEqual(externalRequests, []);
    assert.deepEqual(browserErrors, []);
    // The refused keys (401), and the models query where the platform has no model registry yet (400, then
    // the dashboard falls back to finetune jobs).
    const expected = new Set(['401 Me UNAUTHENTICATED', '400 Counts GRAPHQL_VALIDATION_FAILED', '400 Models GRAPHQL_VALIDATION_FAILED']);
    const failed = await Promise.all(failedResponses);
    assert.deepEqual(failed.filter((f) => !expected.has(f)), [], failed.join(', '));
    assert.ok(existsSync(join(RESULTS, 'dashboard.png')));
  });
});
