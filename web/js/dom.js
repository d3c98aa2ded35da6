// Small DOM and formatting helpers shared by the pages. No HTML strings anywhere:
// every element is built with `el`, so no text from the API is parsed as HTML.

/**
 * Creates an element. `attrs` keys: `class`, `text`, `on<event>` (a listener),
 * `dataset` (an object), boolean attributes as true/false, others as strings.
 */
export function el(tag, attrs = {}, ...children) {
  const svg = ['svg', 'line', 'path', 'g'].includes(tag);
  const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key in node && !svg && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key === 'className' ? 'class' : key, value === true ? '' : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const messages = () => document.getElementById('messages');

/** Shows an error (an ApiError or any Error) in the message area. */
export function showError(err, context) {
  const code = err.code ?? 'error';
  const text = `${context ? `${context}: ` : ''}${err.message}${err.path ? ` (${err.path})` : ''}`;
  const existing = [...messages().children].find((m) => m.dataset.text === `${code} ${text}`);
  if (existing) return;
  const item = el('div', { class: 'message error', dataset: { code, text: `${code} ${text}` }, 'data-testid': 'error' },
    el('code', { text: code }), ' ', el('span', { text }),
    el('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', text: '×', onclick: () => item.remove() }));
  messages().append(item);
}

/** Shows a short notice (not an error) that goes away by itself. */
export function showNotice(text) {
  const item = el('div', { class: 'message notice', text });
  messages().append(item);
  setTimeout(() => item.remove(), 4000);
}

export function clearErrors() {
  messages().replaceChildren();
}

/** A number for people: 4 significant digits, exponent form when very small or large. */
export function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs < 1e-3 || abs >= 1e5) return value.toExponential(2).replace('e+', 'e');
  return String(Number(value.toPrecision(digits)));
}

export const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);

/** A one-line summary of a schedule spec, e.g. `cosine 0.3→0.01 over 20, warm-up 5`. */
export function scheduleSummary(s) {
  if (!s || typeof s !== 'object') return '';
  const f = fmt;
  switch (s.kind) {
    case 'constant': return `constant ${f(s.lr)}`;
    case 'inverse_power': return `inverse_power ${f(s.lr)}·(t+1)^−${f(s.power ?? 0.5)}`;
    case 'factor': return `factor ${f(s.lr)} ×${f(s.factor)}/step${s.min_lr ? `, min ${f(s.min_lr)}` : ''}`;
    case 'step': return `step ${f(s.lr)} ×${f(s.factor)} every ${s.step_size}`;
    case 'multi_factor': return `multi_factor ${f(s.lr)} ×${f(s.factor)} at ${(s.milestones ?? []).join(',')}`;
    case 'cosine': return `cosine ${f(s.lr)}→${f(s.final_lr ?? 0)} over ${s.max_steps}${s.warmup_steps ? `, warm-up ${s.warmup_steps}` : ''}`;
    case 'polynomial': return `polynomial ${f(s.lr)}→${f(s.final_lr ?? 0)} over ${s.max_steps}, power ${f(s.power ?? 1)}`;
    case 'linear': return `linear ${f(s.start_lr)}→${f(s.end_lr)} over ${s.steps}`;
    case 'cosine_restarts': return `cosine_restarts ${f(s.lr)}→${f(s.final_lr ?? 0)}, period ${s.period}${(s.period_mult ?? 1) > 1 ? ` ×${s.period_mult}` : ''}`;
    case 'cyclic': return `cyclic ${f(s.base_lr)}↔${f(s.max_lr)}, up ${s.step_size_up} (${s.mode ?? 'triangular'})`;
    case 'one_cycle': return `one_cycle max ${f(s.max_lr)} over ${s.total_steps}`;
    case 'warmup': return `warm-up ${s.steps} → ${scheduleSummary(s.then)}`;
    case 'sequential': return (s.phases ?? []).map((p) => `${p.steps ? `${p.steps}× ` : ''}${scheduleSummary(p.schedule)}`).join(' ▸ ');
    case 'reduce_on_plateau': return `reduce_on_plateau ${f(s.lr)} ×${f(s.factor ?? 0.1)}, patience ${s.patience ?? 10}`;
    default: return String(s.kind);
  }
}

/** The job's summary including its unit when it steps per update. */
export function jobSummary(job) {
  const spec = job.spec ?? {};
  return `${scheduleSummary(spec.schedule)}${spec.schedule_unit === 'step' ? ' (per update)' : ''}`;
}

export function statusBadge(status) {
  return el('span', { class: `badge status-${status}`, 'data-testid': 'status', text: status });
}

export const isActive = (status) => status === 'queued' || status === 'running';

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Replaces the page's query string without a reload (shareable state). */
export function setQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString().replaceAll('%2C', ',');
  history.replaceState(null, '', `${location.pathname}${s ? `?${s}` : ''}`);
}

/** Saves text as a file in the browser (no server round trip). */
export function download(filename, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function relativeTime(iso) {
  if (!iso) return '–';
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
