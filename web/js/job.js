// The job page at `/jobs/{id}`: its state, spec, warnings and error, actions,
// and live charts. Per-epoch charts grow with the SSE stream's `epoch` events;
// per-update charts are re-read (downsampled by the server) at most every 5 s
// while the job runs, and once more when it is done.

import { get, post, del, compareSteps, query, openEvents, authLink } from './api.js';
import { el, fmt, pct, jobSummary, statusBadge, isActive, showError, setQuery } from './dom.js';
import { Chart } from './charts.js';
import { readView, viewParams, viewControls } from './chartstate.js';

export const EPOCH_METRICS = [
  { key: 'test_acc', title: 'Test accuracy', y: 'accuracy' },
  { key: 'train_acc', title: 'Train accuracy', y: 'accuracy' },
  { key: 'test_loss', title: 'Test loss', y: 'loss' },
  { key: 'train_loss', title: 'Train loss', y: 'loss' },
  { key: 'lr', title: 'Learning rate per epoch', y: 'rate', noSmooth: true },
];
export const STEP_METRICS = [
  { key: 'lr_step', title: 'Learning rate per update', y: 'rate', noSmooth: true },
  { key: 'loss_step', title: 'Batch loss per update', y: 'loss' },
];
const FIELDS = ['epoch', 'train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr', 'lr_min', 'lr_max'];
const STEPS_REFRESH_MS = 5000;

export async function render(view, id) {
  let chartView = readView(new URLSearchParams(location.search));
  let job;
  let metrics;
  try {
    [job, metrics] = await Promise.all([get(`/v1/jobs/${id}`), get(`/v1/jobs/${id}/metrics?format=series`)]);
  } catch (err) {
    showError(err);
    view.replaceChildren(el('h1', { text: `Job ${id}` }), el('p', { class: 'muted', text: 'This job cannot be shown.' }), el('a', { href: '/', text: 'Back to the jobs' }));
    return;
  }
  for (const f of FIELDS) metrics[f] ??= [];

  const head = el('div', { class: 'page-head' });
  const progress = el('div', { class: 'progress-line' });
  const facts = el('dl', { class: 'facts', 'data-testid': 'facts' });
  const notes = el('div');
  const charts = el('div', { class: 'charts' });
  const stepCharts = el('div', { class: 'charts' });
  const spec = el('pre', { class: 'spec', 'data-testid': 'spec' });
  const dialog = confirmDialog();

  view.replaceChildren(head, progress, facts, notes,
    el('div', { class: 'section-head' }, el('h2', { text: 'Per epoch' }),
      viewControls(chartView, (v) => { chartView = v; setQuery(viewParams(v)); drawEpochs(); drawSteps(); })),
    charts,
    el('h2', { text: 'Per update' }),
    stepCharts,
    el('details', { open: true }, el('summary', { text: 'Spec' }), spec),
    dialog);

  const svg = (key) => (v) => `/v1/jobs/${id}/chart.svg${query({ metric: key, log_y: v.logy ? 'true' : '' })}`;
  const epochCharts = EPOCH_METRICS.map((m) => [m, new Chart(charts, { key: m.key, title: m.title, xLabel: 'epoch', yLabel: m.y, svgHref: svg(m.key), filename: `job-${id}-${m.key}` })]);
  const updateCharts = STEP_METRICS.map((m) => [m, new Chart(stepCharts, { key: m.key, title: m.title, xLabel: 'update', yLabel: m.y, svgHref: svg(m.key), filename: `job-${id}-${m.key}` })]);

  function drawHead() {
    const actions = el('div', { class: 'actions' });
    if (isActive(job.status)) {
      actions.append(el('button', { type: 'button', 'data-testid': 'cancel', disabled: job.cancel_requested, text: job.cancel_requested ? 'Canceling…' : 'Cancel', onclick: cancel }));
    } else {
      actions.append(el('button', { type: 'button', class: 'danger', 'data-testid': 'delete', text: 'Delete', onclick: () => dialog.showModal() }));
    }
    if (job.status !== 'queued' || job.attempts > 0) {
      actions.append(authLink(el('a', { class: 'button', href: `/v1/jobs/${id}/weights`, download: `job-${id}.safetensors`, 'data-testid': 'weights', text: job.status === 'succeeded' ? 'Weights' : 'Latest weights' }),
        `job-${id}.safetensors`, (err) => showError(err, `the weights of job ${id}`)));
    }
    actions.append(el('a', { class: 'button', href: `/compare?ids=${id}&metric=test_acc`, text: 'Compare…' }),
      el('a', { class: 'button', href: `/new?from=${id}`, 'data-testid': 'resubmit', text: 'Edit as new' }));
    head.replaceChildren(
      el('h1', {}, job.name, el('span', { class: 'muted id', text: ` #${job.id} ` }), statusBadge(job.status)),
      actions);
    head.dataset.status = job.status;
    drawProgress(job.progress ?? {});

    const s = job.spec;
    const o = s.optimizer ?? {};
    const best = job.best_metrics;
    const fact = (k, v) => [el('dt', { text: k }), el('dd', { text: v })];
    facts.replaceChildren(
      ...fact('Schedule', jobSummary(job)),
      ...fact('Epochs × batch', `${s.epochs} × ${s.batch_size}${s.train_limit ? `, first ${s.train_limit} train` : ''}${s.test_limit ? `, ${s.test_limit} test` : ''} images`),
      ...fact('Optimizer', `SGD${o.momentum ? `, momentum ${o.momentum}${o.nesterov ? ' (Nesterov)' : ''}` : ''}${o.weight_decay ? `, weight decay ${o.weight_decay}` : ''}`),
      ...fact('Seed, priority', `${s.seed}, ${s.priority}`),
      ...fact('Best test accuracy', best ? `${pct(best.test_acc)} at epoch ${best.epoch}` : '–'),
      ...fact('Latest', job.latest_metrics ? `epoch ${job.latest_metrics.epoch}: test acc ${pct(job.latest_metrics.test_acc)}, train loss ${fmt(job.latest_metrics.train_loss)}` : '–'),
      ...fact('Created', new Date(job.created_at).toLocaleString()),
      ...fact('Ran', job.started_at ? `${new Date(job.started_at).toLocaleString()}${job.finished_at ? ` – ${new Date(job.finished_at).toLocaleTimeString()}` : ''}${job.device ? ` on ${job.device}` : ''}${job.attempts > 1 ? `, ${job.attempts} attempts` : ''}` : job.queue_position !== undefined ? `queued, ${job.queue_position} ahead` : '–'));

    notes.replaceChildren();
    if (job.error) {
      notes.append(el('div', { class: 'callout error', 'data-testid': 'job-error' }, el('strong', { text: 'Error ' }), el('code', { text: job.error.code }), ` ${job.error.message}`));
    }
    if (job.warnings?.length) notes.append(warningList(job.warnings));
    spec.textContent = JSON.stringify(job.spec, null, 2);
  }

  function drawProgress(p) {
    const extra = [];
    if (p.examples_per_sec) extra.push(`${Math.round(p.examples_per_sec).toLocaleString()} examples/s`);
    if (p.batch_loss !== undefined) extra.push(`batch loss ${fmt(p.batch_loss)}`);
    progress.replaceChildren(
      el('progress', { max: '1', value: String(p.fraction ?? 0), 'data-testid': 'job-progress', 'aria-label': 'progress' }),
      el('span', { class: 'muted', text: ` epoch ${p.epoch ?? 0}/${p.epochs ?? job.spec.epochs} · update ${(p.step ?? 0).toLocaleString()}/${(p.total_steps ?? 0).toLocaleString()}${extra.length ? ` · ${extra.join(' · ')}` : ''}` }));
  }

  function drawEpochs() {
    for (const [m, chart] of epochCharts) {
      const line = { label: m.key, values: metrics[m.key], smooth: !m.noSmooth, stepped: m.key === 'lr' };
      const varies = m.key === 'lr' && metrics.lr_min.some((v, i) => v !== metrics.lr_max[i]);
      if (varies) line.band = { min: metrics.lr_min, max: metrics.lr_max };
      chart.draw(metrics.epoch, [line], chartView);
    }
  }

  let steps = null;
  function drawSteps() {
    if (!steps) return;
    const x = steps.step.map((s) => s + 1);
    const j = steps.jobs[0] ?? {};
    for (const [m, chart] of updateCharts) {
      if (m.key === 'lr_step') {
        const s = steps.bucket_size > 1 ? { label: 'lr', band: { min: j.lr_min, max: j.lr_max }, smooth: false } : { label: 'lr', values: j.lr_min, smooth: false };
        chart.draw(x, [s], chartView);
      } else {
        chart.draw(x, [{ label: 'loss', values: j.loss_mean, band: steps.bucket_size > 1 ? { min: j.loss_min, max: j.loss_max } : undefined }], chartView);
      }
    }
  }

  let lastSteps = 0;
  let stepsTimer = null;
  async function refreshSteps(force) {
    const wait = lastSteps + STEPS_REFRESH_MS - Date.now();
    if (!force && wait > 0) {
      stepsTimer ??= setTimeout(() => { stepsTimer = null; refreshSteps(); }, wait);
      return;
    }
    lastSteps = Date.now();
    try {
      steps = await compareSteps([id]);
      drawSteps();
    } catch (err) {
      showError(err, 'per-update series');
    }
  }

  async function cancel() {
    try {
      job = (await post(`/v1/jobs/${id}/cancel`)).json;
      drawHead();
    } catch (err) {
      showError(err, 'cancel');
    }
  }

  function confirmDialog() {
    const d = el('dialog', { 'data-testid': 'delete-dialog' },
      el('p', { text: `Delete job ${id} with its metrics and weights? This cannot be undone.` }),
      el('div', { class: 'actions' },
        el('button', { type: 'button', text: 'Keep it', onclick: () => d.close() }),
        el('button', {
          type: 'button', class: 'danger', 'data-testid': 'confirm-delete', text: 'Delete',
          onclick: async () => {
            d.close();
            try {
              await del(`/v1/jobs/${id}`);
              location.href = '/';
            } catch (err) {
              showError(err, 'delete');
            }
          },
        })));
    return d;
  }

  function appendEpoch(row) {
    const last = metrics.epoch[metrics.epoch.length - 1] ?? 0;
    if (row.epoch <= last) return;
    for (const f of FIELDS) metrics[f].push(row[f] ?? null);
    drawEpochs();
  }

  function follow() {
    const data = (e) => JSON.parse(e.data);
    const events = openEvents(`/v1/jobs/${id}/events`, {
      status: (e) => {
        const d = data(e);
        job = d.id !== undefined ? d : { ...job, status: d.status };
        drawHead();
      },
      progress: (e) => {
        const p = data(e);
        job.progress = { ...job.progress, ...p };
        drawProgress(p);
        refreshSteps();
      },
      epoch: (e) => appendEpoch(data(e)),
      done: async () => {
        events.close();
        try {
          job = await get(`/v1/jobs/${id}`);
          drawHead();
        } catch (err) {
          showError(err, `job ${id}`);
        }
        refreshSteps(true);
      },
      onclosed: () => showError({ code: 'stream_closed', message: 'live updates stopped; reload the page to resume' }),
    });
  }

  drawHead();
  drawEpochs();
  refreshSteps(true);
  if (isActive(job.status)) follow();
}

export function warningList(warnings) {
  return el('div', { class: 'callout warn', 'data-testid': 'warnings' },
    el('strong', { text: warnings.length === 1 ? 'Warning' : `${warnings.length} warnings` }),
    el('ul', {}, warnings.map((w) => el('li', { 'data-testid': 'warning', dataset: { code: w.code } },
      el('code', { text: w.code }), ` ${w.message}`, w.path ? el('span', { class: 'muted', text: ` (${w.path})` }) : null))));
}
