// The compare page: `/compare?ids=1,2&metric=test_acc&logx=0&logy=1&smooth=0`.
// Every job's curve of one metric on one chart, with a legend that names each
// job and its schedule; the whole state is in the URL, so a view is a link.

import { get, compareSteps, query } from './api.js';
import { el, fmt, jobSummary, isActive, setQuery, showError, showNotice } from './dom.js';
import { Chart, seriesStyle, swatch, onThemeChange } from './charts.js';
import { readView, viewParams, viewControls } from './chartstate.js';
import { EPOCH_METRICS, STEP_METRICS } from './job.js';

const METRICS = [...EPOCH_METRICS, ...STEP_METRICS];
const POLL_MS = 5000;

export function parseIds(text) {
  return [...new Set((text ?? '').split(/[\s,]+/).map(Number).filter((n) => Number.isInteger(n) && n > 0))];
}

export async function render(view) {
  const params = new URLSearchParams(location.search);
  const state = {
    ids: parseIds(params.get('ids')),
    metric: METRICS.some((m) => m.key === params.get('metric')) ? params.get('metric') : 'test_acc',
    view: readView(params),
    hidden: new Set(),
  };
  const save = () => setQuery({ ids: state.ids.join(','), metric: state.metric, ...viewParams(state.view) });
  save();

  const idsInput = el('input', { id: 'compare-ids', value: state.ids.join(','), placeholder: 'e.g. 1,2,3', 'data-testid': 'compare-ids', inputmode: 'numeric' });
  const metricSelect = el('select', { id: 'metric', 'data-testid': 'metric-select' },
    METRICS.map((m) => el('option', { value: m.key, selected: m.key === state.metric, text: m.title })));
  const legend = el('ol', { class: 'legend', 'data-testid': 'legend', 'aria-label': 'Jobs on the chart' });
  const plotArea = el('div', { class: 'compare-plot' });

  view.replaceChildren(
    el('div', { class: 'page-head' },
      el('h1', { text: 'Compare' }),
      el('div', { class: 'actions' },
        el('button', { type: 'button', 'data-testid': 'copy-link', text: 'Copy link', onclick: copyLink }))),
    el('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); state.ids = parseIds(idsInput.value); idsInput.value = state.ids.join(','); save(); load(); } },
      el('label', { for: 'compare-ids' }, 'Jobs ', idsInput),
      el('button', { type: 'submit', text: 'Show' }),
      el('label', { for: 'metric' }, 'Metric ', metricSelect),
      viewControls(state.view, (v) => { state.view = v; save(); draw(); })),
    el('div', { class: 'compare' }, plotArea, legend));

  const metricInfo = () => METRICS.find((m) => m.key === state.metric);
  let chart = null;
  function newChart() {
    plotArea.replaceChildren();
    const m = metricInfo();
    chart = new Chart(plotArea, {
      key: m.key, title: m.title, xLabel: m.key.endsWith('_step') ? 'update' : 'epoch', yLabel: m.y, height: 420,
      legend: false, filename: `compare-${m.key}`, empty: state.ids.length ? 'No data yet.' : 'Pick jobs on the Jobs page, or type their ids above.',
      svgHref: (v) => `/v1/compare.svg${query({ ids: state.ids.join(','), metric: m.key, log_y: v.logy ? 'true' : '' })}`,
      onFocus: (i) => legend.querySelectorAll('.legend-entry').forEach((b, k) => b.classList.toggle('focused', k === i)),
      onCursor: (idx) => showValues(idx),
    });
  }
  metricSelect.addEventListener('change', () => { state.metric = metricSelect.value; save(); newChart(); load(); });

  let jobs = [];
  let series = new Map();
  let steps = null;
  let timer = null;

  async function load() {
    clearTimeout(timer);
    if (!state.ids.length) {
      jobs = [];
      draw();
      return;
    }
    const step = state.metric.endsWith('_step');
    const results = await Promise.allSettled(state.ids.map((id) => get(`/v1/jobs/${id}`)));
    jobs = [];
    results.forEach((r, k) => {
      if (r.status === 'fulfilled') jobs.push(r.value);
      else showError(r.reason, `job ${state.ids[k]}`);
    });
    try {
      if (step) {
        steps = jobs.length ? await compareSteps(jobs.map((j) => j.id)) : null;
      } else {
        const all = await Promise.all(jobs.map((j) => get(`/v1/jobs/${j.id}/metrics?format=series`)));
        series = new Map(all.map((s, k) => [jobs[k].id, s]));
      }
    } catch (err) {
      showError(err, 'metrics');
    }
    draw();
    if (jobs.some((j) => isActive(j.status)) && !document.hidden) timer = setTimeout(load, POLL_MS);
  }

  function lines() {
    const m = metricInfo();
    const styleIndex = (id) => state.ids.indexOf(id);
    if (m.key.endsWith('_step')) {
      if (!steps) return { x: [], lines: [] };
      const byId = new Map(steps.jobs.map((j) => [j.id, j]));
      const wide = steps.bucket_size > 1;
      return {
        x: steps.step.map((s) => s + 1),
        lines: jobs.map((job) => {
          const d = byId.get(job.id) ?? {};
          const base = { label: job.name, styleIndex: styleIndex(job.id), hidden: state.hidden.has(job.id) };
          if (m.key === 'lr_step') return wide ? { ...base, band: { min: d.lr_min ?? [], max: d.lr_max ?? [] }, smooth: false } : { ...base, values: d.lr_min ?? [], smooth: false };
          return { ...base, values: d.loss_mean ?? [], band: wide ? { min: d.loss_min ?? [], max: d.loss_max ?? [] } : undefined };
        }),
      };
    }
    const epochs = Math.max(0, ...jobs.map((j) => (series.get(j.id)?.epoch ?? []).length));
    const x = Array.from({ length: epochs }, (_, i) => i + 1);
    return {
      x,
      lines: jobs.map((job) => {
        const s = series.get(job.id) ?? {};
        const byEpoch = new Map((s.epoch ?? []).map((e, i) => [e, s[m.key]?.[i] ?? null]));
        return {
          label: job.name, styleIndex: styleIndex(job.id), hidden: state.hidden.has(job.id),
          values: x.map((e) => byEpoch.get(e) ?? null), smooth: !m.noSmooth, stepped: m.key === 'lr',
        };
      }),
    };
  }

  let drawn = { x: [], lines: [] };
  function draw() {
    if (!chart) newChart();
    drawn = lines();
    chart.draw(drawn.x, drawn.lines, state.view);
    drawLegend();
  }

  function drawLegend() {
    legend.replaceChildren(...jobs.map((job, i) => {
      const shown = !state.hidden.has(job.id);
      const toggle = el('button', {
        type: 'button', class: 'toggle', 'aria-pressed': String(shown), 'data-testid': 'legend-toggle',
        title: `${shown ? 'Hide' : 'Show'} this job's curve`,
        onclick: () => { if (shown) state.hidden.add(job.id); else state.hidden.delete(job.id); draw(); },
        onfocus: () => chart.highlight(i), onblur: () => chart.highlight(null),
      }, swatch(seriesStyle(state.ids.indexOf(job.id))), el('span', { class: 'name', text: job.name }));
      return el('li', {
        class: 'legend-entry', 'data-testid': 'legend-entry', dataset: { jobId: String(job.id), shown: String(shown) },
        title: `${job.name} #${job.id}: ${jobSummary(job)}`,
        onmouseenter: () => chart.highlight(i), onmouseleave: () => chart.highlight(null),
      },
      toggle,
      el('span', { class: 'summary muted' },
        el('a', { href: `/jobs/${job.id}`, text: `#${job.id}`, 'aria-label': `Open job ${job.id}` }),
        ` ${isActive(job.status) ? `${job.status} · ` : ''}${jobSummary(job)}`),
      el('span', { class: 'value', 'data-testid': 'legend-value' }));
    }));
    showValues(null);
  }

  /** Each job's value at the cursor, or its last value when the cursor is away. */
  function showValues(idx) {
    const at = chart?.valuesAt(idx) ?? new Map();
    legend.querySelectorAll('.legend-entry').forEach((b, i) => {
      let v = at.get(i);
      if (idx === null) {
        const values = drawn.lines[i]?.values ?? drawn.lines[i]?.band?.max ?? [];
        v = [...values].reverse().find((x) => x !== null && x !== undefined);
      }
      b.querySelector('.value').textContent = v === undefined || v === null ? '' : fmt(v);
    });
  }

  async function copyLink() {
    try {
      await navigator.clipboard.writeText(location.href);
      showNotice('Link copied.');
    } catch {
      showNotice(location.href);
    }
  }

  document.addEventListener('visibilitychange', () => { if (!document.hidden) load(); });
  onThemeChange(drawLegend);
  newChart();
  await load();
}
