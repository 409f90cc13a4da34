// Privatune compliance dashboard. Plain ES module, no build step. Reads only the GraphQL API, with the
// API key the user signs in with (kept in this tab's sessionStorage). Every value from the API is put in
// the page as text (textContent), never parsed as HTML.

const KEY_STORAGE = 'privatune.apiKey';
const ALLOWED_ROLES = ['AUDITOR', 'ADMIN'];
/** A dataset is "near" its limit from this share of the limit used (spent + reserved) on ... */
const NEAR_LIMIT = 0.8;
/** ... and "at" its limit from this share (less than 1% left). */
const AT_LIMIT = 0.99;
const PAGE = 100; // the API's largest page
const COUNT_BATCH = 6; // datasets per model-count query: about 700 cost each, under GRAPHQL_MAX_COST's 5000

const main = document.getElementById('main');
const announcer = document.getElementById('announcer');
let chart = null; // the Chart.js instance on the dataset page
let renderToken = 0; // increases on every navigation; stale async renders check it and stop

// ---------------------------------------------------------------------------------------------------
// Small helpers

/** Creates an element. attrs: properties/attributes (on*: listeners); children: nodes or text. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'style') Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function announce(text) {
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = text), 50);
}

const fmtEps = (x) => {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (x === 0) return '0';
  return Math.abs(x) >= 0.001 ? x.toFixed(3) : x.toExponential(2);
};
const fmtDelta = (d) => (d === null || d === undefined ? '—' : Number(d).toExponential());
const fmtNum = (x, digits = 4) => (x === null || x === undefined ? '—' : String(Number(x.toPrecision(digits))));
/** UTC, to the second: unambiguous for audit trails. */
const fmtTime = (iso) => (iso ? new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—');
/** The same without the zone, for columns headed "(UTC)". */
const fmtUtc = (iso) => fmtTime(iso).replace(' UTC', '');

/** Share of the limit used by spent and reserved releases, and the resulting state. */
function budgetState(b) {
  const used = b.epsilonLimit > 0 ? (b.epsilonLimit - b.epsilonRemaining) / b.epsilonLimit : 1;
  const state = used >= AT_LIMIT ? 'at' : used >= NEAR_LIMIT ? 'near' : 'ok';
  return { used, state };
}
const STATE_TEXT = { ok: 'Within budget', near: 'Near limit', at: 'At limit' };

function stateBadge(state) {
  return h('span', { class: `badge ${state}` }, STATE_TEXT[state]);
}

/** Stacked bar of spent / reserved / remaining epsilon, proportional to the limit. */
function budgetBar(b, large = false) {
  const limit = b.epsilonLimit > 0 ? b.epsilonLimit : 1;
  const pct = (x) => `${Math.max(0, Math.min(100, (x / limit) * 100)).toFixed(2)}%`;
  const label = `Spent ε ${fmtEps(b.epsilonSpent)}, reserved ε ${fmtEps(b.epsilonReserved)}, remaining ε ${fmtEps(b.epsilonRemaining)} of limit ${fmtEps(b.epsilonLimit)}`;
  return h('div', { class: `budget-bar${large ? ' large' : ''}`, role: 'img', 'aria-label': label, title: label },
    h('span', { class: 'spent', style: { width: pct(b.epsilonSpent) } }),
    h('span', { class: 'reserved', style: { width: pct(b.epsilonReserved) } }));
}

function legend() {
  return h('div', { class: 'legend', 'aria-hidden': 'true' },
    h('span', {}, h('i', { class: 'spent' }), 'spent'),
    h('span', {}, h('i', { class: 'reserved' }), 'reserved'),
    h('span', {}, h('i', { class: 'remaining' }), 'remaining'));
}

function describeEvent(e) {
  const kind = { GAUSSIAN: 'Gaussian', POISSON_SUBSAMPLED_GAUSSIAN: 'Subsampled Gaussian', LAPLACE: 'Laplace' }[e.type] ?? e.type;
  const parts = [`${kind} σ=${fmtNum(e.noiseMultiplier)}`];
  if (e.samplingRate !== null && e.samplingRate !== undefined) parts.push(`q=${fmtNum(e.samplingRate)}`);
  if (e.count !== 1) parts.push(`×${e.count}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------------
// GraphQL

class GqlError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function gql(query, variables = {}, key = sessionStorage.getItem(KEY_STORAGE)) {
  let res;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new GqlError('The platform cannot be reached.', 'NETWORK');
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new GqlError(`Unexpected answer from the platform (HTTP ${res.status}).`, 'HTTP');
  }
  const err = body.errors?.[0];
  if (err) {
    const code = err.extensions?.code;
    if (code === 'UNAUTHENTICATED' && key === sessionStorage.getItem(KEY_STORAGE)) {
      signOut('Your API key is no longer accepted. Sign in again.');
    }
    throw new GqlError(err.message, code);
  }
  return body.data;
}

/** Follows a connection's pages; pick(data) returns the connection. */
async function allPages(query, variables, pick, maxPages = 100) {
  const nodes = [];
  let after = null;
  for (let i = 0; i < maxPages; i++) {
    const conn = pick(await gql(query, { ...variables, after }));
    nodes.push(...conn.edges.map((e) => e.node));
    if (!conn.pageInfo.hasNextPage) break;
    after = conn.pageInfo.endCursor;
  }
  return nodes;
}

const BUDGET_FIELDS = 'epsilonLimit delta epsilonSpent epsilonReserved epsilonRemaining accountant naiveEpsilonSum';

const DATASETS_QUERY = `query Datasets($after: String) {
  datasets(first: ${PAGE}, after: $after) {
    edges { node { id name declaredSize delta createdAt budget { ${BUDGET_FIELDS} } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const DATASET_QUERY = `query Dataset($id: ID!) {
  dataset(id: $id) { id name description declaredSize delta fingerprint createdAt budget { ${BUDGET_FIELDS} } }
  verifyLedger(datasetId: $id) { valid entries firstInvalidEntry reason }
  budgetHistory(datasetId: $id) { time seq kind epsilonSpent epsilonReserved epsilonLimit }
}`;

const LEDGER_QUERY = `query Ledger($id: ID!, $after: String) {
  dataset(id: $id) {
    ledger(first: ${PAGE}, after: $after) {
      edges { node { seq kind purpose requesterName createdAt epsilonSpent epsilonReserved epsilonLimit hash
        events { type noiseMultiplier samplingRate count } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

const EXPORT_QUERY = `query Export($id: ID!, $format: LedgerExportFormat!) {
  exportLedger(datasetId: $id, format: $format) { filename contentType content }
}`;

// Models trained on a dataset: from the model registry (`models` query) where the platform has it, else
// from the finetune jobs that produced a model. The first source the schema accepts is kept for the tab.
const GUARANTEE_FIELDS = 'epsilon delta accountant noiseMultiplier clipNorm method';
const MODEL_SOURCES = [
  { field: 'models', arg: 'dataset', node: `id name version createdAt guarantee { ${GUARANTEE_FIELDS} }`, countNode: 'id', isModel: () => true, toModel: (m) => m },
  { field: 'models', arg: 'datasetId', node: `id name version createdAt guarantee { ${GUARANTEE_FIELDS} }`, countNode: 'id', isModel: () => true, toModel: (m) => m },
  {
    field: 'finetuneJobs', arg: 'datasetId', fromJobs: true,
    node: 'id status modelId modelName method epsilon delta noiseMultiplier createdAt finishedAt',
    countNode: 'status modelId',
    isModel: (j) => j.status === 'SUCCEEDED' && !!j.modelId,
    toModel: (j) => ({
      id: j.modelId, name: j.modelName, version: null, createdAt: j.finishedAt ?? j.createdAt,
      guarantee: { epsilon: j.epsilon, delta: j.delta, accountant: null, noiseMultiplier: j.noiseMultiplier, clipNorm: null, method: j.method },
    }),
  },
];
let modelSource = 0;

/** True when the schema has no such field or argument: that source is not available on this platform. */
const isSchemaMismatch = (err) => err instanceof GqlError && err.code === 'GRAPHQL_VALIDATION_FAILED';

const connectionPart = (alias, src, vars, node) =>
  `${alias}: ${src.field}(${src.arg}: $${vars[0]}, first: ${PAGE}, after: $${vars[1]}) { edges { node { ${node} } } pageInfo { hasNextPage endCursor } }`;

/** The models trained on one dataset, and whether they were read from finetune jobs. */
async function loadModels(datasetId) {
  for (;;) {
    const src = MODEL_SOURCES[modelSource];
    try {
      const query = `query Models($id: ID!, $after: String) { ${connectionPart('list', src, ['id', 'after'], src.node)} }`;
      const nodes = await allPages(query, { id: datasetId }, (d) => d.list);
      return { models: nodes.filter(src.isModel).map(src.toModel), fromJobs: !!src.fromJobs };
    } catch (err) {
      if (!isSchemaMismatch(err) || modelSource === MODEL_SOURCES.length - 1) throw err;
      modelSource++;
    }
  }
}

/**
 * Model counts of many datasets: one query per batch of datasets (aliased fields), following pages. The
 * batch shrinks if the platform's query cost limit is lower than the default.
 */
async function countModels(datasetIds, onCount) {
  let pending = datasetIds.map((id) => ({ id, after: null, count: 0 }));
  let batchSize = COUNT_BATCH;
  while (pending.length) {
    const src = MODEL_SOURCES[modelSource];
    const batch = pending.slice(0, batchSize);
    const vars = {};
    const parts = batch.map((item, i) => {
      vars[`d${i}`] = item.id;
      vars[`a${i}`] = item.after;
      return connectionPart(`c${i}`, src, [`d${i}`, `a${i}`], src.countNode);
    });
    const decl = batch.map((_, i) => `$d${i}: ID!, $a${i}: String`).join(', ');
    let data;
    try {
      data = await gql(`query Counts(${decl}) { ${parts.join(' ')} }`, vars);
    } catch (err) {
      if (err.code === 'QUERY_TOO_COSTLY' && batchSize > 1) {
        batchSize = Math.ceil(batchSize / 2);
        continue;
      }
      if (!isSchemaMismatch(err) || modelSource === MODEL_SOURCES.length - 1) throw err;
      modelSource++;
      pending = datasetIds.map((id) => ({ id, after: null, count: 0 }));
      continue;
    }
    const next = [];
    batch.forEach((item, i) => {
      const conn = data[`c${i}`];
      item.count += conn.edges.filter((e) => src.isModel(e.node)).length;
      if (conn.pageInfo.hasNextPage) next.push({ ...item, after: conn.pageInfo.endCursor });
      else onCount(item.id, item.count);
    });
    pending = [...next, ...pending.slice(batchSize)];
  }
}

// ---------------------------------------------------------------------------------------------------
// Session

function setAccount(me) {
  const account = document.getElementById('account');
  account.hidden = !me;
  document.getElementById('who').textContent = me ? `${me.name} (${me.role.toLowerCase()})` : '';
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  setAccount(null);
  destroyChart();
  renderSignIn(message);
}

function renderSignIn(message) {
  renderToken++;
  document.title = 'Sign in · Privatune compliance dashboard';
  const input = h('input', {
    id: 'api-key', name: 'apiKey', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'api-key-help signin-error',
  });
  const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' }, message ?? '');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    onsubmit: async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      submit.disabled = true;
      error.textContent = '';
      try {
        const { me } = await gql('query Me { me { name role } }', {}, key);
        if (!ALLOWED_ROLES.includes(me.role)) {
          error.textContent = `This key has the ${me.role.toLowerCase()} role; the dashboard needs an auditor or admin key.`;
          return;
        }
        sessionStorage.setItem(KEY_STORAGE, key);
        setAccount(me);
        announce(`Signed in as ${me.name}`);
        route();
      } catch (err) {
        error.textContent = err.code === 'UNAUTHENTICATED' ? 'This API key is not valid.' : err.message;
      } finally {
        submit.disabled = false;
      }
    },
  }, h('label', { for: 'api-key' }, 'API key'), input,
  h('p', { id: 'api-key-help', class: 'muted' }, 'An auditor or admin key. It is kept only in this browser tab and forgotten when the tab closes.'),
  submit, error);
  main.replaceChildren(h('section', { class: 'signin card', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Compliance dashboard'), form));
  input.focus();
}

// ---------------------------------------------------------------------------------------------------
// Views

function destroyChart() {
  chart?.destroy();
  chart = null;
}

/** Shows a view: replaces main's content, sets the title and moves focus to the heading. */
function show(title, ...content) {
  main.replaceChildren(...content);
  main.removeAttribute('aria-busy');
  document.title = `${title} · Privatune compliance dashboard`;
  const heading = main.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function loading(text) {
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(h('p', { class: 'muted' }, text));
}

function failure(title, err) {
  show(title, h('h1', {}, title), h('p', { class: 'error', role: 'alert' }, err.message),
    h('p', {}, h('a', { href: '#/' }, 'Back to all datasets')));
}

async function renderOverview() {
  const token = ++renderToken;
  destroyChart();
  loading('Loading datasets…');
  let datasets;
  try {
    datasets = await allPages(DATASETS_QUERY, {}, (d) => d.datasets);
  } catch (err) {
    if (token === renderToken) failure('Datasets', err);
    return;
  }
  if (token !== renderToken) return;

  const counts = { ok: 0, near: 0, at: 0 };
  const modelCells = new Map();
  const rows = datasets.map((d) => {
    const b = d.budget;
    const { used, state } = budgetState(b);
    counts[state]++;
    const modelCell = h('td', { class: 'num', 'data-models': '' }, h('span', { class: 'muted' }, '…'));
    modelCells.set(d.id, modelCell);
    return h('tr', { class: state === 'ok' ? '' : state, 'data-dataset-id': d.id, 'data-state': state },
      h('th', { scope: 'row' }, h('a', { href: `#/datasets/${encodeURIComponent(d.id)}` }, d.name),
        h('div', { class: 'muted' }, `n = ${d.declaredSize.toLocaleString('en')}`)),
      h('td', {}, budgetBar(b), h('div', { class: 'muted' }, `${Math.round(used * 100)}% used`)),
      h('td', { class: 'num' }, fmtEps(b.epsilonSpent)),
      h('td', { class: 'num' }, fmtEps(b.epsilonReserved)),
      h('td', { class: 'num' }, fmtEps(b.epsilonRemaining)),
      h('td', { class: 'num' }, fmtEps(b.epsilonLimit)),
      h('td', { class: 'num' }, fmtDelta(b.delta)),
      modelCell,
      h('td', {}, stateBadge(state)));
  });

  const table = datasets.length
    ? h('div', { class: 'table-wrap' }, h('table', { id: 'datasets' },
      h('caption', {}, 'Privacy budget of every dataset (ε at the dataset’s δ, composed by the accountant). ' +
        `Near limit: ${NEAR_LIMIT * 100}% or more used; at limit: ${AT_LIMIT * 100}% or more used (spent + reserved).`),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Dataset'), h('th', { scope: 'col' }, 'Budget'),
        h('th', { scope: 'col', class: 'num' }, 'Spent ε'), h('th', { scope: 'col', class: 'num' }, 'Reserved ε'),
        h('th', { scope: 'col', class: 'num' }, 'Remaining ε'), h('th', { scope: 'col', class: 'num' }, 'Limit ε'),
        h('th', { scope: 'col', class: 'num' }, 'δ'), h('th', { scope: 'col', class: 'num' }, 'Models'),
        h('th', { scope: 'col' }, 'State'))),
      h('tbody', {}, rows)), legend())
    : h('p', {}, 'No datasets are registered yet.');

  show('Datasets',
    h('h1', {}, 'Datasets'),
    h('p', { class: 'summary' },
      h('span', {}, `${datasets.length} dataset${datasets.length === 1 ? '' : 's'}`),
      h('span', {}, `${counts.near} near limit`),
      h('span', {}, `${counts.at} at limit`)),
    table);

  countModels(datasets.map((d) => d.id), (id, n) => {
    if (token !== renderToken) return;
    modelCells.get(id)?.replaceChildren(String(n));
  }).catch((err) => {
    if (token !== renderToken) return;
    for (const cell of modelCells.values()) {
      if (cell.querySelector('.muted')) cell.replaceChildren(h('span', { class: 'muted', title: err.message }, 'n/a'));
    }
  });
}

/** Chart.js is large: it is loaded only when a chart is first shown. */
let chartJs = null;
function loadChartJs() {
  chartJs ??= new Promise((resolve, reject) => {
    const script = h('script', { src: '/dashboard/vendor/chart.umd.min.js' });
    script.onload = () => resolve(window.Chart);
    script.onerror = () => {
      chartJs = null;
      reject(new Error('The chart library could not be loaded.'));
    };
    document.head.append(script);
  });
  return chartJs;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [1, 2, 5, 10, 15, 30].map((n) => n * SECOND)
  .concat([1, 2, 5, 10, 15, 30].map((n) => n * MINUTE), [1, 2, 3, 6, 12].map((n) => n * HOUR), [1, 2, 7, 14, 30, 91, 182, 365].map((n) => n * DAY));

/** Chart.js has no time axis without a date adapter: ticks on round UTC times for a linear x axis in ms. */
function timeTicks(scale) {
  const { min, max } = scale;
  const step = TIME_STEPS.find((s) => (max - min) / s <= 8) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) ticks.push({ value: t });
  scale.ticks = ticks.length ? ticks : [{ value: min }];
  scale.$timeStep = step;
}
function timeLabel(value, _index, ticks) {
  const iso = new Date(value).toISOString(); // 2026-01-31T12:34:56.789Z
  const step = this.$timeStep ?? SECOND;
  const span = ticks.length > 1 ? ticks[ticks.length - 1].value - ticks[0].value : 0;
  if (step >= DAY) return iso.slice(0, 10);
  if (span >= DAY) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return step >= MINUTE ? iso.slice(11, 16) : iso.slice(11, 19);
}

async function drawSpendChart(canvas, history) {
  const Chart = await loadChartJs();
  destroyChart();
  // The state after the last entry holds until now: the series end at the present.
  const last = history[history.length - 1];
  const now = Math.max(Date.now(), Date.parse(last.time));
  const points = (f) => [...history.map((p) => ({ x: Date.parse(p.time), y: f(p) })), { x: now, y: f(last) }];
  chart = new Chart(canvas, {
    type: 'line',
    data: {
      datasets: [
        { label: 'Spent ε', data: points((p) => p.epsilonSpent), borderColor: '#1f6feb', backgroundColor: 'rgba(31,111,235,.15)', fill: 'origin', stepped: 'before', pointRadius: 3 },
        { label: 'Spent + reserved ε', data: points((p) => p.epsilonSpent + p.epsilonReserved), borderColor: '#b7791f', borderDash: [6, 4], stepped: 'before', pointRadius: 0 },
        { label: 'Limit ε', data: points((p) => p.epsilonLimit), borderColor: '#b42318', borderWidth: 2, stepped: 'before', pointRadius: 0 },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'time (UTC)' }, afterBuildTicks: timeTicks, ticks: { callback: timeLabel, maxRotation: 0 } },
        y: { beginAtZero: true, title: { display: true, text: 'ε' } },
      },
      plugins: {
        legend: { position: 'bottom' },
        tooltip: {
          callbacks: {
            title: (items) => {
              const p = history[items[0].dataIndex];
              return p ? `#${p.seq} ${p.kind} · ${fmtTime(p.time)}` : `now · ${fmtTime(new Date(now).toISOString())}`;
            },
            label: (item) => `${item.dataset.label}: ${fmtEps(item.parsed.y)}`,
          },
        },
      },
    },
  });
  return chart;
}

function ledgerRow(e) {
  return h('tr', { 'data-seq': e.seq },
    h('td', { class: 'num' }, e.seq),
    h('td', { class: 'time' }, fmtUtc(e.createdAt)),
    h('td', {}, e.kind),
    h('td', {}, e.requesterName ?? '—'),
    h('td', { class: 'text' }, e.purpose),
    h('td', {}, e.events.length ? e.events.map((ev, i) => [i ? h('br') : null, describeEvent(ev)]) : '—'),
    h('td', { class: 'num' }, fmtEps(e.epsilonSpent)),
    h('td', { class: 'num' }, fmtEps(e.epsilonReserved)),
    h('td', { class: 'num' }, fmtEps(e.epsilonLimit)),
    h('td', { class: 'hash', title: e.hash }, `${e.hash.slice(0, 10)}…`));
}

function verificationView(v) {
  if (!v) return h('p', { class: 'verify muted' }, 'Verification unavailable.');
  return v.valid
    ? h('p', { class: 'verify valid', id: 'verification', 'data-valid': 'true' }, `✓ Hash chain verified: ${v.entries} entries, every link and hash recomputed.`)
    : h('p', { class: 'verify invalid', id: 'verification', 'data-valid': 'false', role: 'alert' },
      `✗ Hash chain broken at entry ${v.firstInvalidEntry ?? '?'} of ${v.entries}${v.reason ? `: ${v.reason}` : ''}.`);
}

function download(filename, contentType, content) {
  const url = URL.createObjectURL(new Blob([content], { type: contentType }));
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function exportButton(datasetId, format, status) {
  const button = h('button', {
    type: 'button',
    'data-export': format,
    onclick: async () => {
      button.disabled = true;
      status.textContent = `Preparing the ${format} export…`;
      try {
        const { exportLedger: x } = await gql(EXPORT_QUERY, { id: datasetId, format });
        download(x.filename, x.contentType, x.content);
        status.textContent = `Downloaded ${x.filename}.`;
      } catch (err) {
        status.textContent = `Export failed: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    },
  }, `Download ${format}`);
  return button;
}

function modelsView(result) {
  if (result instanceof Error) {
    return h('p', { class: 'muted', id: 'models-status' }, `Models not available (${result.message}).`);
  }
  const { models, fromJobs } = result;
  const note = fromJobs
    ? h('p', { class: 'muted' }, 'From finished finetune jobs (the model registry query is not available on this platform).')
    : null;
  if (!models.length) return [h('p', { id: 'models-status' }, 'No models have been trained on this dataset.'), note];
  return [h('div', { class: 'table-wrap' }, h('table', { id: 'models' },
    h('caption', {}, 'Each model’s differential-privacy guarantee with respect to this dataset.'),
    h('thead', {}, h('tr', {}, ['Model', 'Version', 'ε', 'δ', 'Accountant', 'Noise multiplier', 'Clip norm', 'Method', 'Created']
      .map((t, i) => h('th', { scope: 'col', class: i >= 1 && i <= 6 && i !== 4 ? 'num' : undefined }, t)))),
    h('tbody', {}, models.map((m) => h('tr', { 'data-model-id': m.id },
      h('th', { scope: 'row' }, m.name),
      h('td', { class: 'num' }, m.version ?? '—'),
      h('td', { class: 'num' }, fmtEps(m.guarantee?.epsilon)),
      h('td', { class: 'num' }, fmtDelta(m.guarantee?.delta)),
      h('td', {}, m.guarantee?.accountant ?? '—'),
      h('td', { class: 'num' }, m.guarantee ? fmtNum(m.guarantee.noiseMultiplier) : '—'),
      h('td', { class: 'num' }, m.guarantee?.clipNorm != null ? fmtNum(m.guarantee.clipNorm) : '—'),
      h('td', {}, m.guarantee?.method ?? '—'),
      h('td', { class: 'mono' }, fmtTime(m.createdAt))))))), note];
}

async function renderDataset(id) {
  const token = ++renderToken;
  destroyChart();
  loading('Loading dataset…');
  const settle = (p) => p.then((v) => v, (err) => err);
  const [main$, ledger$, models$] = [
    gql(DATASET_QUERY, { id }),
    settle(gql(LEDGER_QUERY, { id, after: null })),
    settle(loadModels(id)),
  ];
  let data;
  try {
    data = await main$;
  } catch (err) {
    if (token === renderToken) failure('Dataset', err);
    return;
  }
  const [ledgerPage, models] = await Promise.all([ledger$, models$]);
  if (token !== renderToken) return;
  const d = data.dataset;
  const b = d.budget;
  const { used, state } = budgetState(b);

  // Ledger table with "load more" (oldest first, as the ledger is written).
  const ledgerBody = h('tbody');
  const ledgerStatus = h('p', { class: 'muted', 'aria-live': 'polite' });
  let after = null;
  const moreButton = h('button', { type: 'button', hidden: true, onclick: () => loadMore() }, 'Load more entries');
  const addPage = (page) => {
    const conn = page.dataset.ledger;
    ledgerBody.append(...conn.edges.map((e) => ledgerRow(e.node)));
    after = conn.pageInfo.endCursor;
    moreButton.hidden = !conn.pageInfo.hasNextPage;
    ledgerStatus.textContent = `Showing ${ledgerBody.rows.length} of ${data.verifyLedger?.entries ?? data.budgetHistory.length} entries.`;
  };
  async function loadMore() {
    moreButton.disabled = true;
    try {
      addPage(await gql(LEDGER_QUERY, { id, after }));
    } catch (err) {
      ledgerStatus.textContent = `Could not load more entries: ${err.message}`;
    } finally {
      moreButton.disabled = false;
    }
  }

  const exportStatus = h('p', { class: 'muted', role: 'status' });
  const canvas = h('canvas', {
    id: 'spend-chart', role: 'img',
    'aria-label': `Spent epsilon over time, ${data.budgetHistory.length} ledger entries; now ${fmtEps(b.epsilonSpent)} spent and ${fmtEps(b.epsilonReserved)} reserved of ${fmtEps(b.epsilonLimit)}. The ledger table below lists the same data.`,
  });
  const chartStatus = h('p', { class: 'muted' });

  show(d.name,
    h('a', { class: 'back', href: '#/' }, '← All datasets'),
    h('h1', {}, d.name, ' ', stateBadge(state)),
    d.description ? h('p', {}, d.description) : null,
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'budget-title' },
        h('h2', { id: 'budget-title' }, 'Budget'),
        budgetBar(b, true), legend(),
        h('dl', { class: 'facts', style: { marginTop: '.75rem' } },
          h('dt', {}, 'Limit ε'), h('dd', {}, fmtEps(b.epsilonLimit)),
          h('dt', {}, 'Spent ε'), h('dd', {}, fmtEps(b.epsilonSpent)),
          h('dt', {}, 'Reserved ε'), h('dd', {}, fmtEps(b.epsilonReserved)),
          h('dt', {}, 'Remaining ε'), h('dd', { id: 'remaining' }, fmtEps(b.epsilonRemaining)),
          h('dt', {}, 'Used'), h('dd', {}, `${(used * 100).toFixed(1)}%`),
          h('dt', {}, 'δ'), h('dd', {}, fmtDelta(b.delta)),
          h('dt', {}, 'Accountant'), h('dd', {}, b.accountant),
          h('dt', {}, 'Naive sum of ε'), h('dd', { title: 'What adding up each release’s own ε would claim; shown for comparison only.' }, fmtEps(b.naiveEpsilonSum)))),
      h('section', { class: 'card', 'aria-labelledby': 'facts-title' },
        h('h2', { id: 'facts-title' }, 'Dataset'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'ID'), h('dd', { class: 'mono' }, d.id),
          h('dt', {}, 'Examples (n)'), h('dd', {}, d.declaredSize.toLocaleString('en')),
          h('dt', {}, 'Fingerprint'), h('dd', { class: 'mono' }, d.fingerprint),
          h('dt', {}, 'Registered'), h('dd', {}, fmtTime(d.createdAt))),
        h('h2', { style: { marginTop: '1rem' } }, 'Ledger integrity'),
        verificationView(data.verifyLedger))),
    h('section', { class: 'card', 'aria-labelledby': 'chart-title' },
      h('h2', { id: 'chart-title' }, 'Spend over time'),
      h('div', { class: 'chart-box' }, canvas), chartStatus),
    h('section', { class: 'card', 'aria-labelledby': 'models-title' },
      h('h2', { id: 'models-title' }, 'Models trained on this dataset'),
      modelsView(models)),
    h('section', { class: 'card', 'aria-labelledby': 'ledger-title' },
      h('h2', { id: 'ledger-title' }, 'Privacy ledger'),
      h('div', { class: 'actions' },
        exportButton(id, 'CSV', exportStatus), exportButton(id, 'JSON', exportStatus), exportStatus),
      ledgerPage instanceof Error
        ? h('p', { class: 'error', role: 'alert' }, `The ledger could not be loaded: ${ledgerPage.message}`)
        : h('div', { class: 'table-wrap', role: 'region', 'aria-labelledby': 'ledger-title', tabindex: 0 }, h('table', { id: 'ledger' },
          h('caption', {}, 'Every entry of the append-only, hash-chained ledger, oldest first. Spent, reserved and limit are the budget right after the entry.'),
          h('thead', {}, h('tr', {}, ['#', 'Time (UTC)', 'Kind', 'Who', 'What for', 'Events', 'Spent ε', 'Reserved ε', 'Limit ε', 'Hash']
            .map((t, i) => h('th', { scope: 'col', class: i === 0 || (i >= 6 && i <= 8) ? 'num' : undefined }, t)))),
          ledgerBody)),
      ledgerStatus, moreButton));

  if (!(ledgerPage instanceof Error)) addPage(ledgerPage);
  try {
    await drawSpendChart(canvas, data.budgetHistory);
    if (token !== renderToken) destroyChart();
  } catch (err) {
    chartStatus.textContent = err.message;
  }
}

// ---------------------------------------------------------------------------------------------------
// Routing: #/ (overview) and #/datasets/<id>. Other hashes (the skip link) are not routes.

function route() {
  if (!sessionStorage.getItem(KEY_STORAGE)) return signOut();
  const match = /^#\/datasets\/([^/]+)$/.exec(location.hash);
  if (match) return renderDataset(decodeURIComponent(match[1]));
  return renderOverview();
}

window.addEventListener('hashchange', () => {
  if (location.hash === '' || location.hash.startsWith('#/')) route();
});
document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  announce('Signed out');
});
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

async function start() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) return renderSignIn();
  try {
    const { me } = await gql('query Me { me { name role } }');
    setAccount(me);
    route();
  } catch (err) {
    if (err.code !== 'UNAUTHENTICATED') signOut(err.message);
  }
}

start();
