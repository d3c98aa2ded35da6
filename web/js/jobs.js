// The jobs list at `/`: filters in the URL (?status=running,queued&name=…),
// live while any job is queued or running (polls GET /v1/jobs every 2 s),
// checkboxes to pick jobs for the compare page.

import { get, query } from './api.js';
import { el, fmt, jobSummary, statusBadge, isActive, debounce, setQuery, showError, relativeTime } from './dom.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const POLL_MS = 2000;
const PAGE = 50;

export function render(view) {
  const params = new URLSearchParams(location.search);
  const state = {
    statuses: new Set((params.get('status') ?? '').split(',').filter((s) => STATUSES.includes(s))),
    name: params.get('name') ?? '',
    limit: PAGE,
    selected: new Set(),
    timer: null,
  };

  const nameInput = el('input', { id: 'filter-name', type: 'search', value: state.name, placeholder: 'exact name', 'data-testid': 'filter-name' });
  const statusButtons = STATUSES.map((s) => el('button', {
    type: 'button', class: 'chip', 'aria-pressed': String(state.statuses.has(s)), 'data-testid': `filter-${s}`, text: s,
    onclick: (e) => {
      if (state.statuses.has(s)) state.statuses.delete(s); else state.statuses.add(s);
      e.currentTarget.setAttribute('aria-pressed', String(state.statuses.has(s)));
      changed();
    },
  }));
  const compareButton = el('button', { type: 'button', class: 'primary', 'data-testid': 'compare-selected', disabled: true, text: 'Compare', onclick: compare });
  const selectAll = el('input', { type: 'checkbox', 'aria-label': 'Select all jobs on this page', 'data-testid': 'select-all', onchange: toggleAll });
  const body = el('tbody');
  const total = el('p', { class: 'muted', 'data-testid': 'jobs-total' });
  const more = el('button', { type: 'button', hidden: true, text: 'Show more', onclick: () => { state.limit = Math.min(1000, state.limit + PAGE); load(); } });

  view.replaceChildren(
    el('div', { class: 'page-head' },
      el('h1', { text: 'Jobs' }),
      el('div', { class: 'actions' }, compareButton, el('a', { class: 'button', href: '/new', text: 'New job' }))),
    el('div', { class: 'filters', role: 'search' },
      el('div', { class: 'chips', role: 'group', 'aria-label': 'Status' }, statusButtons),
      el('label', { for: 'filter-name' }, 'Name ', nameInput)),
    el('div', { class: 'table-wrap' },
      el('table', { class: 'jobs', 'data-testid': 'jobs-table' },
        el('thead', {}, el('tr', {},
          el('th', { class: 'select' }, selectAll), el('th', { text: 'Job' }), el('th', { text: 'Status' }),
          el('th', { text: 'Schedule' }), el('th', { class: 'num', text: 'Epochs' }), el('th', { text: 'Progress' }),
          el('th', { class: 'num', text: 'Best test acc' }), el('th', { text: 'Warnings' }), el('th', { class: 'hide-narrow', text: 'Created' }))),
        body)),
    total, more);

  nameInput.addEventListener('input', debounce(() => { state.name = nameInput.value.trim(); changed(); }, 300));

  function changed() {
    state.limit = PAGE;
    setQuery({ status: [...state.statuses].join(','), name: state.name });
    load();
  }

  let loading = null;
  async function load() {
    clearTimeout(state.timer);
    const seq = (loading = Symbol('load'));
    try {
      const page = await get(`/v1/jobs${query({ status: [...state.statuses].join(','), name: state.name, limit: state.limit })}`);
      if (seq !== loading) return;
      draw(page);
      if (page.jobs.some((j) => isActive(j.status)) && !document.hidden) state.timer = setTimeout(load, POLL_MS);
    } catch (err) {
      showError(err, 'listing jobs');
    }
  }

  function draw(page) {
    const rows = page.jobs.map(row);
    body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: '9', class: 'muted empty', text: emptyText() }))]));
    total.textContent = `${page.total} job${page.total === 1 ? '' : 's'}${page.jobs.length < page.total ? `, ${page.jobs.length} shown` : ''}`;
    more.hidden = !page.next_cursor || state.limit >= 1000;
    syncSelection();
  }

  const emptyText = () => (state.statuses.size || state.name ? 'No job matches these filters.' : 'No jobs yet: submit one from “New job”.');

  function row(job) {
    const p = job.progress ?? {};
    const box = el('input', {
      type: 'checkbox', 'aria-label': `Select job ${job.id} (${job.name})`, checked: state.selected.has(job.id),
      'data-testid': 'select-job', dataset: { jobId: String(job.id) },
      onchange: (e) => { if (e.target.checked) state.selected.add(job.id); else state.selected.delete(job.id); syncSelection(); },
    });
    const codes = job.warnings ?? [];
    return el('tr', { 'data-testid': 'job-row', dataset: { jobId: String(job.id), status: job.status } },
      el('td', { class: 'select' }, box),
      el('td', { class: 'name' }, el('a', { href: `/jobs/${job.id}`, text: job.name }), el('span', { class: 'muted id', text: ` #${job.id}` })),
      el('td', { class: 'c-status' }, statusBadge(job.status)),
      el('td', { class: 'summary', text: jobSummary(job) }),
      el('td', { class: 'num c-epochs', text: String(job.spec?.epochs ?? '') }),
      el('td', { class: 'nowrap c-progress' }, el('progress', { max: '1', value: String(p.fraction ?? 0), 'aria-label': `progress of job ${job.id}` }),
        el('span', { class: 'muted small', text: ` ${p.epoch ?? 0}/${p.epochs ?? '?'}` })),
      el('td', { class: 'num c-acc', 'data-label': 'best test acc ', text: job.best_metrics ? fmt(job.best_metrics.test_acc, 3) : '–' }),
      el('td', { class: 'warnings', 'data-testid': 'job-warnings', dataset: { count: String(codes.length) } },
        codes.length ? el('div', { class: 'warn-list' }, codes.map((w) => el('span', { class: 'badge warn', title: w.message, text: w.code }))) : null),
      el('td', { class: 'muted hide-narrow nowrap', title: job.created_at, text: relativeTime(job.created_at) }));
  }

  function syncSelection() {
    const n = state.selected.size;
    compareButton.disabled = n === 0;
    compareButton.textContent = n ? `Compare ${n}` : 'Compare';
    const boxes = [...body.querySelectorAll('input[type=checkbox]')];
    selectAll.checked = boxes.length > 0 && boxes.every((b) => b.checked);
  }

  function toggleAll() {
    for (const box of body.querySelectorAll('input[type=checkbox]')) {
      box.checked = selectAll.checked;
      const id = Number(box.dataset.jobId);
      if (box.checked) state.selected.add(id); else state.selected.delete(id);
    }
    syncSelection();
  }

  function compare() {
    const ids = [...state.selected].sort((a, b) => a - b);
    location.href = `/compare?ids=${ids.join(',')}&metric=test_acc`;
  }

  document.addEventListener('visibilitychange', () => { if (!document.hidden) load(); });
  load();
}
