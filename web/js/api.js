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
    dialog.dataset.testid = 'token-dialog';
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
    input.dataset.testid = 'token-input';
    label.append(document.createElement('br'), input);
    const submit = document.createElement('button');
    submit.type = 'submit';
    submit.textContent = 'Use token';
    submit.dataset.testid = 'token-submit';
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

/** The server's `--auth` mode from `/healthz` (`tokens`, `none`, …), asked once. */
let mode = null;
export function authMode() {
  mode ??= fetch('/healthz', { headers: { accept: 'application/json' } })
    .then((r) => r.json())
    .then((body) => body.auth ?? 'none')
    .catch(() => 'none');
  return mode;
}

/**
 * On a server with `--auth tokens`, asks for a token before the page loads its data
 * (once per tab session: it is kept in sessionStorage). Resolves to the mode.
 */
export async function signIn() {
  const m = await authMode();
  if (m === 'tokens' && !savedToken()) {
    await askForToken('This lrlab needs an API token (lrlab token create). API token:');
  }
  return m;
}

/** Forgets this tab's token and asks for another one. */
export async function logOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  const given = await askForToken('Logged out. API token:');
  if (given) location.reload();
}

/** `fetch` with this tab's token; on a 401 asks for a token once and retries. */
export async function authedFetch(url, init = {}, retried = false) {
  const token = savedToken();
  const headers = { ...(init.headers ?? {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { ...init, headers });
  if (response.status === 401 && !retried) {
    sessionStorage.removeItem(TOKEN_KEY);
    const given = await askForToken(token
      ? 'That token was refused (unknown, revoked or expired). API token:'
      : 'This lrlab needs an API token (lrlab token create). API token:');
    if (given) return authedFetch(url, init, true);
  }
  return response;
}

/**
 * Downloads `url` as `filename` through fetch → Blob → object URL, so the request
 * carries the token (a plain link cannot). Errors come back as an ApiError.
 */
export async function downloadUrl(url, filename) {
  let response;
  try {
    response = await authedFetch(url);
  } catch (err) {
    throw new ApiError(0, 'network_error', `cannot reach the server (${err.message})`);
  }
  if (!response.ok) {
    const json = await readJson(response);
    const e = json?.error ?? {};
    throw new ApiError(response.status, e.code ?? `http_${response.status}`, e.message ?? response.statusText, e.path);
  }
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

/**
 * Makes link `a` (a weights or SVG link) work with a token: while this tab holds one, a
 * click downloads the file through `downloadUrl` instead of navigating (which would go
 * out without the Authorization header). Without a token the link stays a plain link.
 */
export function authLink(a, filename, onError) {
  a.addEventListener('click', (event) => {
    if (!savedToken()) return;
    event.preventDefault();
    const name = typeof filename === 'function' ? filename() : filename;
    downloadUrl(a.href, name).catch(onError);
  });
  return a;
}

/**
 * Server-sent events of `url`, as `{close()}`; `handlers` maps event names to functions
 * of `{data}`, plus `onclosed()` when the stream stops for good. Without a token this is
 * an EventSource; with one (EventSource cannot send headers) a fetch whose body is read
 * as a stream and parsed here (`event:`/`data:` lines, a blank line ends an event), and
 * reconnected after a pause as EventSource would.
 */
export function openEvents(url, handlers) {
  if (!savedToken()) {
    const source = new EventSource(url);
    for (const [name, fn] of Object.entries(handlers)) {
      if (name !== 'onclosed') source.addEventListener(name, fn);
    }
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) handlers.onclosed?.();
    });
    return { close: () => source.close() };
  }
  const controller = new AbortController();
  let closed = false;
  const close = () => {
    closed = true;
    controller.abort();
  };
  const dispatch = (name, data) => {
    const fn = handlers[name || 'message'];
    if (fn && name !== 'onclosed') fn({ type: name || 'message', data });
  };
  (async () => {
    for (let failures = 0; !closed && failures < 5;) {
      let response;
      try {
        response = await authedFetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
      } catch {
        if (closed) return;
        failures += 1;
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      if (!response.ok || !response.body) break;
      failures = 0;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let name = '';
      let data = [];
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          const lines = buffer.split(/\r\n|\r|\n/);
          buffer = lines.pop();
          for (const line of lines) {
            if (line === '') {
              if (data.length) dispatch(name, data.join('\n'));
              name = '';
              data = [];
            } else if (line.startsWith(':')) {
              // A comment (keep-alive).
            } else {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              let text = colon < 0 ? '' : line.slice(colon + 1);
              if (text.startsWith(' ')) text = text.slice(1);
              if (field === 'event') name = text;
              else if (field === 'data') data.push(text);
            }
          }
          if (closed) return;
        }
      } catch {
        if (closed) return;
      }
      if (closed) return;
      await new Promise((r) => setTimeout(r, 2000));
    }
    if (!closed) handlers.onclosed?.();
  })();
  return { close };
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
