// The lrlab HTTP API as promises. Every failure becomes an ApiError carrying the
// server's stable `code`, its message and the offending field's `path`.

export class ApiError extends Error {
  constructor(status, code, message, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
  }
}

const TOKEN_KEY = 'lrlab.token';

/** The API token of this browser tab (servers with `--auth tokens`), if one was given. */
export const savedToken = () => sessionStorage.getItem(TOKEN_KEY);

let asking = null;

/**
 * Asks for an API token once, in a small form over the page (not `window.prompt`), and
 * keeps it for this tab's session. Concurrent 401s share one form.
 */
function askForToken(message) {
  asking ??= new Promise((resolve) => {
    const dialog = document.createElement('dialog');
    dialog.className = 'token-dialog';
    const form = document.createElement('form');
    form.method = 'dialog';
    const label = document.createElement('label');
    label.textContent = message;
    const input = document.createElement('input');
    input.type = 'password';
    input.name = 'token';
    input.autocomplete = 'off';
    input.placeholder = 'lrlab_…';
    input.required = true;
    label.append(document.createElement('br'), input);
    const submit = document.createElement('button');
    submit.type = 'submit';
    submit.textContent = 'Use token';
    form.append(label, submit);
    dialog.append(form);
    document.body.append(dialog);
    dialog.addEventListener('close', () => {
      const token = input.value.trim();
      dialog.remove();
      asking = null;
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      resolve(token || null);
    });
    dialog.showModal();
  });
  return asking;
}

/** Sends one request; resolves to the parsed JSON body (null for 204). */
export async function request(method, url, body, { headers = {} } = {}, retried = false) {
  const init = { method, headers: { accept: 'application/json', ...headers } };
  const token = savedToken();
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, 'network_error', `cannot reach the server (${err.message})`);
  }
  if (response.status === 401 && !retried) {
    sessionStorage.removeItem(TOKEN_KEY);
    const given = await askForToken(token
      ? 'That token was refused (unknown, revoked or expired). API token:'
      : 'This lrlab needs an API token (lrlab token create). API token:');
    if (given) return request(method, url, body, { headers }, true);
  }
  const json = await readJson(response);
  if (!response.ok) {
    const e = json?.error ?? {};
    throw new ApiError(response.status, e.code ?? `http_${response.status}`,
      e.message ?? response.statusText, e.path);
  }
  return { status: response.status, headers: response.headers, json };
}

async function readJson(response) {
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** A fresh Idempotency-Key: a retried submission is then stored once. */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `ui-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export const get = async (url) => (await request('GET', url)).json;
export const post = (url, body, options) => request('POST', url, body, options);
export const del = (url) => request('DELETE', url);

/** `a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString().replaceAll('%2C', ',');
  return s ? `?${s}` : '';
}

/**
 * Per-update learning rate and batch loss of several jobs in common buckets
 * (`GET /v1/compare/steps`): `{buckets, bucket_size, step[], jobs[{id, name,
 * lr_min[], lr_max[], loss_min[], loss_max[], loss_mean[]}]}`, null where a job
 * has no data in a bucket.
 */
export async function compareSteps(ids, buckets = 1000) {
  if (!noCompareSteps) {
    try {
      return await get(`/v1/compare/steps${query({ ids: ids.join(','), buckets })}`);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  const result = await stepsFallback(ids, buckets);
  // The jobs exist, so the 404 was the route's: stop asking on this page.
  noCompareSteps = true;
  return result;
}

let noCompareSteps = false;

// FALLBACK, to delete once the server has /v1/compare/steps: reads every
// update of each job and buckets them here with the server's rule (min/max
// per bucket, the same buckets for every job). An unknown job still fails
// with the server's 404.
async function stepsFallback(ids, buckets) {
  const all = await Promise.all(ids.map(async (id) => {
    const steps = [];
    for (let from = 0; from !== undefined;) {
      const page = await get(`/v1/jobs/${id}/steps${query({ from, limit: 100000 })}`);
      steps.push(...page.steps);
      from = page.next_from;
    }
    return steps;
  }));
  const views = await Promise.all(ids.map((id) => get(`/v1/jobs/${id}`)));
  const length = Math.max(1, ...all.map((s) => (s.length ? s[s.length - 1].step + 1 : 0)));
  const size = Math.max(1, Math.ceil(length / buckets));
  const n = Math.ceil(length / size);
  const step = Array.from({ length: n }, (_, i) => i * size);
  const jobs = all.map((steps, j) => {
    const out = { id: ids[j], name: views[j].name };
    for (const key of ['lr_min', 'lr_max', 'loss_min', 'loss_max', 'loss_mean']) out[key] = new Array(n).fill(null);
    const sums = new Array(n).fill(0);
    const counts = new Array(n).fill(0);
    for (const { step: s, lr, loss } of steps) {
      const b = Math.floor(s / size);
      out.lr_min[b] = out.lr_min[b] === null ? lr : Math.min(out.lr_min[b], lr);
      out.lr_max[b] = out.lr_max[b] === null ? lr : Math.max(out.lr_max[b], lr);
      if (loss === null) continue;
      out.loss_min[b] = out.loss_min[b] === null ? loss : Math.min(out.loss_min[b], loss);
      out.loss_max[b] = out.loss_max[b] === null ? loss : Math.max(out.loss_max[b], loss);
      sums[b] += loss;
      counts[b] += 1;
    }
    out.loss_mean = sums.map((sum, b) => (counts[b] ? sum / counts[b] : null));
    return out;
  });
  return { buckets: n, bucket_size: size, step, jobs };
}
