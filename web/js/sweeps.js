// The sweeps pages: the list with the server's presets (each one click from running), and
// one sweep: its summary table (mean ± 95% interval per config, rank, "indistinguishable
// from best"), a band chart per metric (mean line, min–max band over the seeds), the member
// jobs and the early-stopping decisions. A sweep that is still running is read again every
// two seconds; the page stops asking once it has ended.

import { get, post, del, query, randomKey } from './api.js';
import { el, fmt, pct, showError, showNotice, statusBadge, relativeTime, setQuery } from './dom.js';
import { Chart } from './charts.js';
import { readView, viewControls, viewParams } from './chartstate.js';

const METRICS = [
  { key: 'test_acc', title: 'Test accuracy', y: 'accuracy' },
  { key: 'test_loss', title: 'Test loss', y: 'loss' },
  { key: 'train_acc', title: 'Train accuracy', y: 'accuracy' },
  { key: 'train_loss', title: 'Train loss', y: 'loss' },
];
const ENDED = new Set(['succeeded', 'failed', 'canceled']);
const POLL_MS = 2000;

export function render(view, id) {
  return id === undefined ? renderList(view) : renderSweep(view, id);
}

/** Submits a sweep request; goes to its page. Shared with the new-job form. */
export async function submitSweep(request) {
  const { json } = await post('/v1/sweeps', request, { headers: { 'idempotency-key': randomKey() } });
  location.assign(`/sweeps/${json.id}`);
}

// ---- the list ----

async function renderList(view) {
  const table = el('tbody', { 'data-testid': 'sweep-rows' });
  const presets = el('div', { class: 'presets-list', 'data-testid': 'sweep-presets' });
  view.replaceChildren(
    el('div', { class: 'page-head' }, el('h1', { text: 'Sweeps' })),
    el('p', { class: 'muted', text: 'A sweep runs several configs on the same seeds and compares them with intervals; '
      + 'ASHA or the median rule stops hopeless configs early. Submit one with POST /v1/sweeps, or start a preset below.' }),
    el('table', { class: 'jobs' },
      el('thead', {}, el('tr', {}, ['Id', 'Name', 'Status', 'Created', 'Finished'].map((h) => el('th', { text: h })))),
      table),
    el('h2', { text: 'Presets' }),
    presets);

  const [list, catalogue] = await Promise.all([get(`/v1/sweeps${query({ limit: 200 })}`), get('/v1/sweeps/presets')]);
  table.replaceChildren(...list.sweeps.map((s) => el('tr', { 'data-testid': `sweep-row-${s.id}` },
    el('td', {}, el('a', { href: `/sweeps/${s.id}`, text: `#${s.id}` })),
    el('td', { text: s.name }),
    el('td', {}, statusBadge(s.status)),
    el('td', { text: relativeTime(s.created_at), title: s.created_at }),
    el('td', { text: s.finished_at ? relativeTime(s.finished_at) : '–', title: s.finished_at ?? '' }))));
  if (!list.sweeps.length) table.append(el('tr', {}, el('td', { colspan: '5', class: 'muted', text: 'No sweeps yet.' })));

  for (const p of catalogue.presets) {
    const r = p.request;
    const size = (Object.values(r.grid ?? {}).reduce((n, v) => n * v.length, 1)) * Math.max(1, (r.variants ?? []).length);
    const seeds = r.seeds?.length ?? r.repeats ?? 1;
    const button = el('button', { type: 'button', class: 'primary small', text: 'Run', 'data-testid': `run-preset-${p.name}` });
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await submitSweep(r);
      } catch (err) {
        showError(err, `preset ${p.name}`);
        button.disabled = false;
      }
    });
    presets.append(el('div', { class: 'preset card' },
      el('div', {}, el('strong', { text: p.name }), ' ', el('span', { class: 'muted', text: `${size} configs × ${seeds} seeds, ${r.base?.epochs ?? '?'} epochs` })),
      el('p', { text: p.question }),
      el('details', {}, el('summary', { text: 'Request' }), el('pre', { class: 'spec small', text: JSON.stringify(r, null, 2) })),
      button));
  }
}

// ---- one sweep ----

async function renderSweep(view, id) {
  const params = new URLSearchParams(location.search);
  const state = {
    metric: METRICS.some((m) => m.key === params.get('metric')) ? params.get('metric') : null,
    view: readView(params),
  };
  const head = el('div', { class: 'page-head' });
  const facts = el('p', { class: 'muted', 'data-testid': 'sweep-facts' });
  const summary = el('div', { 'data-testid': 'sweep-summary' });
  const metricSelect = el('select', { id: 'sweep-metric', 'data-testid': 'sweep-metric' },
    METRICS.map((m) => el('option', { value: m.key, text: m.title })));
  const plotArea = el('div', { class: 'compare-plot' });
  const members = el('div', { 'data-testid': 'sweep-members' });
  const decisions = el('div', { 'data-testid': 'sweep-decisions' });
  view.replaceChildren(head, facts,
    el('h2', { text: 'Summary' }), summary,
    el('div', { class: 'toolbar' },
      el('label', { for: 'sweep-metric' }, 'Metric ', metricSelect),
      viewControls(state.view, (v) => { state.view = v; save(); drawChart(); })),
    plotArea,
    el('h2', { text: 'Members' }), members,
    el('h2', { text: 'Early-stopping decisions' }), decisions);

  let sweep = null;
  let series = null;
  let chart = null;
  const save = () => setQuery({ metric: state.metric, ...viewParams(state.view) });
  metricSelect.addEventListener('change', async () => {
    state.metric = metricSelect.value;
    save();
    chart = null;
    await loadSeries();
  });

  async function loadSeries() {
    series = await get(`/v1/sweeps/${id}/series${query({ metric: state.metric })}`);
    drawChart();
  }

  function drawChart() {
    const m = METRICS.find((x) => x.key === state.metric);
    if (!chart) {
      plotArea.replaceChildren();
      chart = new Chart(plotArea, {
        key: `sweep-${m.key}`, title: `${m.title}: mean over seeds, min–max band`, xLabel: 'epoch', yLabel: m.y, height: 360,
        filename: `sweep-${id}-${m.key}`, svgHref: (v) => `/v1/sweeps/${id}/chart.svg${query({ metric: m.key, log_y: v.logy ? 'true' : '' })}`,
      });
    }
    if (!series) return;
    const epochs = [...new Set(series.configs.flatMap((c) => c.points.map((p) => p.epoch)))].sort((a, b) => a - b);
    const at = (c, key) => epochs.map((e) => c.points.find((p) => p.epoch === e)?.[key] ?? null);
    chart.draw(epochs, series.configs.map((c) => ({
      label: c.name, values: at(c, 'mean'), band: { min: at(c, 'min'), max: at(c, 'max') },
    })), state.view);
  }

  async function load() {
    sweep = await get(`/v1/sweeps/${id}`);
    if (state.metric === null) state.metric = sweep.metric;
    metricSelect.value = state.metric;
    document.title = `Sweep ${sweep.name} · lrlab`;
    drawHead();
    drawSummary();
    drawMembers();
    const [log] = await Promise.all([get(`/v1/sweeps/${id}/decisions`), loadSeries()]);
    drawDecisions(log.decisions);
    if (!ENDED.has(sweep.status)) setTimeout(() => load().catch((err) => showError(err, 'sweep')), POLL_MS);
  }

  function drawHead() {
    const p = sweep.progress;
    const cancel = el('button', { type: 'button', text: 'Cancel', 'data-testid': 'sweep-cancel', hidden: ENDED.has(sweep.status) || sweep.cancel_requested });
    cancel.addEventListener('click', async () => {
      cancel.disabled = true;
      try {
        await post(`/v1/sweeps/${id}/cancel`);
        showNotice('Cancel requested: queued members are canceled, running ones stop at their next batch.');
      } catch (err) {
        showError(err, 'cancel');
      }
    });
    const remove = el('button', { type: 'button', class: 'danger', text: 'Delete', 'data-testid': 'sweep-delete', hidden: !ENDED.has(sweep.status) });
    remove.addEventListener('click', async () => {
      if (!confirm(`Delete sweep ${sweep.name} and its ${p.total} jobs?`)) return;
      try {
        await del(`/v1/sweeps/${id}`);
        location.assign('/sweeps');
      } catch (err) {
        showError(err, 'delete');
      }
    });
    head.replaceChildren(
      el('h1', {}, `Sweep #${sweep.id} `, el('span', { class: 'muted', text: sweep.name }), ' ', statusBadge(sweep.status)),
      el('div', { class: 'actions' },
        el('a', { class: 'button', href: `/compare?ids=${sweep.configs.flatMap((c) => c.members.map((m) => m.job)).join(',')}`, text: 'Compare members' }),
        cancel, remove));
    const rule = sweep.early_stopping ? `${sweep.early_stopping.kind} on ${sweep.early_stopping.metric}` : 'no early stopping';
    facts.replaceChildren(
      el('span', { 'data-testid': 'sweep-progress', text: `${p.done} of ${p.total} members done` }),
      ` (${p.running} running, ${p.queued} queued${p.paused ? `, ${p.paused} paused` : ''}) · ${sweep.configs.length} configs × ${sweep.seeds.length} seeds · ranked by ${sweep.metric} (${sweep.mode}) · ${rule}${sweep.lockstep ? ' · lockstep' : ''}`);
  }

  function drawSummary() {
    const s = sweep.summary;
    const asPct = s.metric.endsWith('_acc');
    const v = (x) => (x === null || x === undefined ? '–' : asPct ? pct(x) : fmt(x));
    const estimate = (e) => (e ? `${v(e.mean)}${e.ci95 ? ` [${v(e.ci95.low)}, ${v(e.ci95.high)}]` : ''}` : '–');
    const diff = (d) => {
      if (!d) return '–';
      const scale = asPct ? 100 : 1;
      const f = (x) => `${x >= 0 ? '+' : ''}${fmt(x * scale, 3)}${asPct ? ' pt' : ''}`;
      return `${f(d.mean)}${d.ci95 ? ` [${f(d.ci95.low)}, ${f(d.ci95.high)}]` : ''} (${d.method}, ${d.pairs} pairs)`;
    };
    const rows = [...s.configs].sort((a, b) => (a.rank ?? 1e9) - (b.rank ?? 1e9));
    summary.replaceChildren(el('table', { class: 'jobs summary' },
      el('thead', {}, el('tr', {}, ['Rank', 'Config', 'Seeds', `Final ${s.metric} (mean, 95% CI)`, 'Best epoch value', 'vs best', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows.map((c) => el('tr', { 'data-testid': `summary-row-${c.config}`, class: c.config === s.best ? 'best' : '' },
        el('td', { text: c.rank ?? '–' }),
        el('td', { text: c.name }),
        el('td', { text: `${c.seeds}${c.complete ? '' : ' (incomplete)'}` }),
        el('td', { text: estimate(c.final_value) }),
        el('td', { text: estimate(c.best_value) }),
        el('td', { text: c.config === s.best ? 'best' : diff(c.vs_best) }),
        el('td', {}, c.indistinguishable_from_best && c.config !== s.best
          ? el('span', { class: 'badge', title: 'The 95% interval of the difference to the best contains 0', text: 'indistinguishable from best' })
          : null))))));
  }

  function drawMembers() {
    members.replaceChildren(el('table', { class: 'jobs' },
      el('thead', {}, el('tr', {}, ['Config', 'Seed', 'Job', 'Status', 'Epochs'].map((h) => el('th', { text: h })))),
      el('tbody', {}, sweep.configs.flatMap((c) => c.members.map((m) => el('tr', {},
        el('td', { text: c.name }),
        el('td', { text: m.seed }),
        el('td', {}, el('a', { href: `/jobs/${m.job}`, text: `#${m.job}` })),
        el('td', {}, statusBadge(m.status)),
        el('td', { text: `${m.epoch} / ${c.epochs}` })))))));
  }

  function drawDecisions(list) {
    if (!list.length) {
      decisions.replaceChildren(el('p', { class: 'muted', text: sweep.early_stopping ? 'No decision yet.' : 'This sweep has no early-stopping rule.' }));
      return;
    }
    decisions.replaceChildren(el('table', { class: 'jobs' },
      el('thead', {}, el('tr', {}, ['#', 'Epoch', 'Config', 'Value', 'Cut-off', 'Action'].map((h) => el('th', { text: h })))),
      el('tbody', {}, list.map((d) => el('tr', {},
        el('td', { text: d.seq }),
        el('td', { text: d.rung_epoch }),
        el('td', { text: d.config_name }),
        el('td', { text: fmt(d.value) }),
        el('td', { text: fmt(d.cutoff) }),
        el('td', {}, el('span', { class: `badge action-${d.action}`, text: d.action })))))));
  }

  await load();
}
