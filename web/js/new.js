// The new-job form at `/new` (`?preset=cosine`, or `?from=<job id>` to start
// from a job's spec). The schedule editor is generated from GET
// /v1/schedules/kinds, nested schedules included; the preview is redrawn as you
// type; warnings are shown before submitting, and a 422 is shown at its field.

import { get, post, request, ApiError } from './api.js';
import { el, debounce, showError, clearErrors, scheduleSummary } from './dom.js';
import { Chart } from './charts.js';
import { warningList } from './job.js';

/** Fashion-MNIST's training split; a job's updates per epoch follow from it. */
const TRAIN_LEN = 60000;
const MAX_PREVIEW_STEPS = 1000000;

export const PRESETS = [
  { id: 'fixed', label: 'Fixed 0.3', schedule: { kind: 'constant', lr: 0.3 } },
  { id: 'sqrt', label: 'Square root', schedule: { kind: 'inverse_power', lr: 0.1, power: 0.5 } },
  { id: 'factor', label: 'Factor from 2.0', schedule: { kind: 'factor', lr: 2.0, factor: 0.9, min_lr: 0.01 } },
  { id: 'multi_factor', label: 'Multi-factor', schedule: { kind: 'multi_factor', lr: 0.5, milestones: [15, 30], factor: 0.5 } },
  { id: 'cosine', label: 'Cosine 0.3→0.01', schedule: { kind: 'cosine', lr: 0.3, final_lr: 0.01, max_steps: 20 } },
  { id: 'cosine_warmup', label: 'Cosine, 5 warm-up', schedule: { kind: 'cosine', lr: 0.3, final_lr: 0.01, max_steps: 20, warmup_steps: 5 } },
];

// The job's own fields (JobRequest in openapi.yaml), in form order.
const JOB_FIELDS = [
  { name: 'name', type: 'string', description: 'Defaults to the schedule’s kind.' },
  { name: 'epochs', type: 'integer', required: true, constraint: '1 to 1000' },
  { name: 'batch_size', type: 'integer', default: 256, constraint: '1 to 60000' },
  { name: 'schedule_unit', type: 'string', default: 'epoch', allowed: ['epoch', 'step'], description: 'What the schedule’s step t counts: epochs, or updates over the run.' },
  { name: 'optimizer.momentum', type: 'number', default: 0, constraint: '0 ≤ m < 1' },
  { name: 'optimizer.nesterov', type: 'boolean', default: false, description: 'Needs momentum > 0.' },
  { name: 'optimizer.weight_decay', type: 'number', default: 0, constraint: '≥ 0' },
  { name: 'seed', type: 'integer', description: 'Drawn and stored when empty.', placeholder: 'random' },
  { name: 'train_limit', type: 'integer', description: 'Use only the first N training images.', placeholder: 'all 60000' },
  { name: 'test_limit', type: 'integer', description: 'Use only the first N test images.', placeholder: 'all 10000' },
  { name: 'priority', type: 'integer', default: 0, description: 'Higher runs first.' },
];

const clone = (v) => structuredClone(v);
const fieldId = (path) => `f-${path.replace(/[^A-Za-z0-9_]+/g, '-')}`;

/** Reads `a.b` of an object; writes it (undefined deletes, empty parents go). */
function getPath(obj, path) {
  return path.split('.').reduce((o, k) => o?.[k], obj);
}
function setPath(obj, path, value) {
  const keys = path.split('.');
  const last = keys.pop();
  let o = obj;
  for (const k of keys) o = o[k] ??= {};
  if (value === undefined) delete o[last]; else o[last] = value;
  if (keys.length && Object.keys(o).length === 0) delete obj[keys[0]];
}

export async function render(view) {
  let kinds;
  try {
    kinds = new Map((await get('/v1/schedules/kinds')).kinds.map((k) => [k.kind, k]));
  } catch (err) {
    showError(err, 'schedule kinds');
    view.replaceChildren(el('h1', { text: 'New job' }), el('p', { class: 'muted', text: 'The schedule catalogue could not be loaded.' }));
    return;
  }

  const params = new URLSearchParams(location.search);
  const job = { epochs: 30 };
  const form = el('form', { class: 'new-job', novalidate: true, 'data-testid': 'new-job-form' });
  const presetBar = el('div', { class: 'chips', role: 'group', 'aria-label': 'Presets from the chapter' });
  const jobBox = el('fieldset', { class: 'job-fields' }, el('legend', { text: 'Job' }));
  const scheduleBox = el('div');
  const preview = el('div', { class: 'preview' });
  const previewNote = el('p', { class: 'muted small', 'data-testid': 'preview-note' });
  const previewLogy = el('input', { type: 'checkbox', id: 'preview-logy', 'data-testid': 'preview-logy' });
  const warningsBox = el('div', { 'data-testid': 'warnings-box' });
  const requestJson = el('pre', { class: 'spec small', 'data-testid': 'request-json' });
  const submit = el('button', { type: 'submit', class: 'primary', id: 'submit', 'data-testid': 'submit', text: 'Submit' });
  const result = el('div', { 'data-testid': 'submit-result' });
  const formError = el('p', { class: 'field-error', hidden: true, 'data-testid': 'form-error' });

  for (const p of PRESETS) {
    presetBar.append(el('button', {
      type: 'button', class: 'chip', 'data-testid': `preset-${p.id}`, 'aria-pressed': 'false', text: p.label,
      title: scheduleSummary(p.schedule), onclick: () => applyPreset(p),
    }));
  }
  for (const f of JOB_FIELDS) jobBox.append(field(f.name, f, job));

  view.replaceChildren(
    el('div', { class: 'page-head' }, el('h1', { text: 'New job' })),
    form);
  form.append(
    el('div', { class: 'presets' }, el('span', { class: 'muted', text: 'Presets (30 epochs): ' }), presetBar),
    el('div', { class: 'form-grid' },
      el('div', { class: 'area-schedule' }, scheduleBox),
      el('div', { class: 'form-side' },
        el('div', { class: 'area-preview' },
          preview,
          el('label', { for: 'preview-logy', class: 'check' }, previewLogy, ' log y'),
          previewNote),
        el('div', { class: 'area-submit' },
          warningsBox,
          el('div', { class: 'actions' }, submit),
          formError,
          result,
          el('details', {}, el('summary', { text: 'Request body' }), requestJson))),
      el('div', { class: 'area-job' }, jobBox)));
  const chart = new Chart(preview, { key: 'preview', title: 'Schedule preview', xLabel: 'step t', yLabel: 'rate', height: 220, legend: false, empty: 'Fill in the schedule to see its curve.' });

  // ---- the schedule editor, generated from the catalogue ----

  function drawSchedule() {
    scheduleBox.replaceChildren(scheduleEditor('schedule', job.schedule, 'Schedule'));
  }

  function scheduleEditor(path, spec, legend) {
    const box = el('fieldset', { class: 'schedule', dataset: { path } });
    const draw = () => {
      const info = kinds.get(spec.kind);
      const select = el('select', { id: fieldId(`${path}.kind`), 'data-path': `${path}.kind`, 'data-testid': `field-${path}.kind` },
        [...kinds.values()].map((k) => el('option', { value: k.kind, selected: k.kind === spec.kind, text: k.kind })));
      select.addEventListener('change', () => {
        for (const k of Object.keys(spec)) delete spec[k];
        Object.assign(spec, clone(kinds.get(select.value).example));
        draw();
        changed();
      });
      box.replaceChildren(
        el('legend', { text: legend }),
        wrap(`${path}.kind`, 'kind', select, info?.summary ?? ''),
        info ? el('code', { class: 'formula', text: info.formula }) : null,
        ...(info?.fields ?? []).map((f) => catalogField(path, f, spec)));
    };
    draw();
    return box;
  }

  function catalogField(path, f, spec) {
    const p = `${path}.${f.name}`;
    if (f.type === 'schedule') {
      spec[f.name] ??= clone(kinds.get('constant').example);
      return scheduleEditor(p, spec[f.name], f.label ?? f.name);
    }
    if (f.type === 'array' && f.items?.length) {
      spec[f.name] ??= [];
      const list = el('div', { class: 'phases', dataset: { path: p } });
      const draw = () => list.replaceChildren(
        ...spec[f.name].map((item, k) => el('div', { class: 'phase' },
          ...f.items.map((sub) => catalogField(`${p}[${k}]`, { ...sub, label: `${f.name}[${k}].${sub.name}` }, item)),
          el('button', {
            type: 'button', class: 'small', disabled: spec[f.name].length === 1, text: `Remove phase ${k + 1}`,
            onclick: () => { spec[f.name].splice(k, 1); draw(); changed(); },
          }))),
        el('button', {
          type: 'button', class: 'small', 'data-testid': `add-${p}`, text: 'Add phase',
          onclick: () => { spec[f.name].push({ steps: 10, schedule: clone(kinds.get('constant').example) }); draw(); changed(); },
        }));
      draw();
      return el('fieldset', { class: 'nested' }, el('legend', { text: f.name }), list);
    }
    return field(p, f, spec, f.name);
  }

  /** One input bound to `key` of `target` (a dotted key for the job's optimizer fields). */
  function field(path, f, target, key = path) {
    const id = fieldId(path);
    const current = getPath(target, key);
    const common = { id, 'data-path': path, 'data-testid': `field-${path}` };
    let input;
    const write = (value) => { setPath(target, key, value); changed(); };
    if (f.type === 'boolean') {
      input = el('input', { ...common, type: 'checkbox', checked: current ?? f.default ?? false });
      input.addEventListener('change', () => write(input.checked));
      return wrap(path, f.label ?? f.name, input, hint(f), true);
    }
    if (f.allowed?.length) {
      input = el('select', common,
        f.required ? null : el('option', { value: '', text: f.default !== undefined ? `(default: ${f.default})` : '(default)' }),
        f.allowed.map((v) => el('option', { value: v, selected: v === current, text: v })));
      input.addEventListener('change', () => write(input.value || undefined));
    } else if (f.type === 'array') {
      input = el('input', { ...common, type: 'text', value: (current ?? []).join(', '), placeholder: 'e.g. 15, 30', inputmode: 'numeric' });
      input.addEventListener('input', () => {
        const items = input.value.split(/[\s,]+/).filter(Boolean).map((t) => (Number.isFinite(Number(t)) ? Number(t) : t));
        write(input.value.trim() ? items : undefined);
      });
    } else if (f.type === 'number' || f.type === 'integer') {
      input = el('input', {
        ...common, type: 'number', step: f.type === 'integer' ? '1' : 'any', value: current ?? '',
        placeholder: f.placeholder ?? (f.default !== undefined ? `default ${f.default}` : f.default_from ? `= ${f.default_from}` : ''),
        required: Boolean(f.required),
      });
      input.addEventListener('input', () => {
        if (input.validity.badInput) return fieldError(path, 'not a number');
        write(input.value === '' ? undefined : Number(input.value));
      });
    } else {
      input = el('input', { ...common, type: 'text', value: current ?? '', placeholder: f.placeholder ?? '', maxlength: '200' });
      input.addEventListener('input', () => write(input.value.trim() === '' ? undefined : input.value));
    }
    return wrap(path, f.label ?? f.name, input, hint(f), false, f.required);
  }

  function hint(f) {
    return [f.description, f.constraint ? `(${f.constraint})` : ''].filter(Boolean).join(' ');
  }

  function wrap(path, label, input, hintText, inline = false, required = false) {
    const hintId = `${fieldId(path)}-hint`;
    if (hintText) input.setAttribute('aria-describedby', hintId);
    const labelEl = el('label', { for: input.id, class: inline ? 'check' : '' }, inline ? input : null, label, required ? el('span', { class: 'req', 'aria-hidden': 'true', text: ' *' }) : null);
    return el('div', { class: 'field', dataset: { field: path } },
      labelEl, inline ? null : input,
      hintText ? el('small', { id: hintId, class: 'hint', text: hintText }) : null,
      el('small', { class: 'field-error', hidden: true, role: 'alert' }));
  }

  // ---- errors at fields ----

  /** Shows `message` at the field named by an API error path, or at the nearest enclosing one. */
  function fieldError(path, message) {
    for (let p = path; p;) {
      const box = form.querySelector(`[data-field="${CSS.escape(p)}"], fieldset[data-path="${CSS.escape(p)}"]`);
      if (box) {
        const err = box.querySelector(':scope > .field-error') ?? box.appendChild(el('small', { class: 'field-error', role: 'alert' }));
        err.hidden = false;
        err.textContent = p === path ? message : `${path}: ${message}`;
        box.classList.add('invalid');
        return;
      }
      const parent = p.replace(/(\[\d+\]|\.[^.[\]]+)$/, '');
      p = parent === p ? '' : parent;
    }
    formError.hidden = false;
    formError.textContent = `${path ? `${path}: ` : ''}${message}`;
  }

  function clearFieldErrors(prefix = '') {
    for (const box of form.querySelectorAll('.invalid')) {
      if (!(box.dataset.field ?? box.dataset.path ?? '').startsWith(prefix)) continue;
      box.classList.remove('invalid');
      const err = box.querySelector(':scope > .field-error');
      if (err) { err.hidden = true; err.textContent = ''; }
    }
    formError.hidden = true;
  }

  // ---- preview, warnings, request ----

  /** The job's length in its schedule unit, as the server counts it. */
  function jobLength() {
    const epochs = Number.isInteger(job.epochs) && job.epochs > 0 ? job.epochs : 1;
    if ((job.schedule_unit ?? 'epoch') === 'epoch') return { length: epochs, unit: 'epoch' };
    const batch = Number.isInteger(job.batch_size) && job.batch_size > 0 ? job.batch_size : 256;
    const used = Math.min(TRAIN_LEN, Number.isInteger(job.train_limit) && job.train_limit > 0 ? job.train_limit : TRAIN_LEN);
    return { length: epochs * Math.max(1, Math.ceil(used / batch)), unit: 'update' };
  }

  let previewSeq = 0;
  const refreshPreview = debounce(async () => {
    const seq = ++previewSeq;
    const { length, unit } = jobLength();
    const steps = Math.min(MAX_PREVIEW_STEPS, Math.max(length + 3, Math.ceil(length * 1.25)));
    try {
      const { json } = await post('/v1/schedules/preview', { schedule: job.schedule, steps });
      if (seq !== previewSeq) return;
      clearFieldErrors('schedule');
      const x = json.lr.map((_, t) => t);
      chart.draw(x, [{ label: 'lr', values: json.lr, smooth: false, stepped: true }],
        { logy: previewLogy.checked, marker: { x: length, label: `job ends: ${length} ${unit}s` } });
      previewNote.textContent = json.adaptive ? 'Adaptive: the rate depends on the metrics during training; the preview shows its starting rate.' : '';
      localWarnings(json, length, unit);
    } catch (err) {
      if (seq !== previewSeq) return;
      if (err instanceof ApiError && err.status === 422) {
        clearFieldErrors('schedule');
        fieldError(err.path ?? '', err.message);
      } else {
        showError(err, 'preview');
      }
    }
  }, 250);
  previewLogy.addEventListener('change', () => { chart.last && chart.draw(chart.last.x, chart.last.series, { ...chart.last.view, logy: previewLogy.checked }); });

  /** What the browser can tell from the preview; the server checks again on submission. */
  function localWarnings(pv, length, unit) {
    // The server's warnings for this very request are shown: they say more, keep them.
    if (confirmed !== null && confirmed === JSON.stringify(body(), null, 2)) return;
    const lr = pv.lr.slice(0, length);
    const warnings = [];
    if (lr[0] === 0) warnings.push({ code: 'zero_rate_at_start', message: `the rate at ${unit} 0 is 0: that ${unit} trains nothing` });
    const peak = Math.max(...lr);
    const momentum = job.optimizer?.momentum ?? 0;
    if (peak / (1 - momentum) > 1) warnings.push({ code: 'rate_likely_diverges', message: `the rate reaches ${peak}${momentum ? ` (effective ${(peak / (1 - momentum)).toFixed(3)} with momentum)` : ''}; this LeNet usually diverges under SGD above 1` });
    if (!pv.adaptive) {
      let last = lr.length - 1;
      while (last > 0 && lr[last - 1] === lr[last]) last -= 1;
      if (last > 0 && lr[last] < peak && last * 2 < length) warnings.push({ code: 'schedule_ends_early', message: `the curve stops changing after ${unit} ${last} of ${length}` });
    }
    showWarnings(warnings, 'Checked in the browser from the preview; the server checks again when you submit.');
  }

  function showWarnings(warnings, note) {
    warningsBox.replaceChildren();
    if (warnings.length) warningsBox.append(warningList(warnings), note ? el('p', { class: 'muted small', text: note }) : null);
  }

  /** The request body: the form's values, leaving out what is empty (the server fills defaults). */
  function body() {
    const order = [...JOB_FIELDS.map((f) => f.name.split('.')[0]), 'schedule'];
    const kindFirst = (v) => {
      if (Array.isArray(v)) return v.map(kindFirst);
      if (!v || typeof v !== 'object') return v;
      const { kind, ...rest } = v;
      return { ...(kind === undefined ? {} : { kind }), ...Object.fromEntries(Object.entries(rest).map(([k, x]) => [k, kindFirst(x)])) };
    };
    return Object.fromEntries(order.filter((k, i) => order.indexOf(k) === i && job[k] !== undefined && job[k] !== null).map((k) => [k, kindFirst(job[k])]));
  }

  let key = null;
  let keyFor = null;
  let confirmed = null;
  function changed() {
    const json = JSON.stringify(body(), null, 2);
    requestJson.textContent = json;
    if (keyFor !== json) {
      key = null;
      confirmed = null;
      submit.textContent = 'Submit';
    }
    for (const b of presetBar.children) b.setAttribute('aria-pressed', 'false');
    refreshPreview();
  }

  function applyPreset(p) {
    job.name = p.id.replaceAll('_', '-');
    job.epochs = 30;
    delete job.schedule_unit;
    job.schedule = clone(p.schedule);
    redrawAll();
    presetBar.querySelector(`[data-testid="preset-${p.id}"]`).setAttribute('aria-pressed', 'true');
  }

  function redrawAll() {
    for (const f of JOB_FIELDS) jobBox.querySelector(`[data-field="${f.name}"]`).replaceWith(field(f.name, f, job));
    drawSchedule();
    clearFieldErrors();
    changed();
  }

  // ---- submission ----

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    clearFieldErrors();
    result.replaceChildren();
    const payload = body();
    const json = JSON.stringify(payload, null, 2);
    if (keyFor !== json || !key) {
      key = randomKey();
      keyFor = json;
    }
    const headers = { 'idempotency-key': key };
    submit.disabled = true;
    try {
      if (confirmed !== json) {
        // Ask the server for its warnings without storing the job: a dry run
        // answers 200 with {dry_run: true, spec, warnings, total_steps} and no
        // Location. A server without dry runs ignores or rejects the parameter:
        // a 201 or a Location means the job was queued anyway (the same
        // Idempotency-Key is reused below, so it is never queued twice); a 4xx
        // other than 422 falls back to a plain submission.
        let dry = null;
        try {
          dry = await post('/v1/jobs?dry_run=true', payload, { headers });
        } catch (err) {
          if (!(err instanceof ApiError) || err.status === 422 || err.status >= 500 || err.status === 0) throw err;
        }
        if (dry && (dry.status === 201 || dry.headers.get('location'))) return submitted(dry.json);
        const check = dry?.json?.dry_run === true ? dry.json : null;
        if (check?.warnings?.length) {
          const updates = Number.isInteger(check.total_steps) ? ` (${check.total_steps.toLocaleString()} updates)` : '';
          showWarnings(check.warnings, `The server’s warnings for this job${updates}. Submit again to queue it anyway.`);
          confirmed = json;
          submit.textContent = 'Submit anyway';
          return;
        }
      }
      const response = await request('POST', '/v1/jobs', payload, { headers });
      submitted(response.json);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) fieldError(err.path ?? '', err.message);
      else showError(err, 'submit');
    } finally {
      submit.disabled = false;
    }
  });

  function submitted(view) {
    key = null;
    keyFor = null;
    confirmed = null;
    submit.textContent = 'Submit';
    result.replaceChildren(el('div', { class: 'callout ok' },
      el('strong', { text: `Job #${view.id} ${view.status}. ` }),
      el('a', { href: `/jobs/${view.id}`, 'data-testid': 'submitted-job-link', text: `Open ${view.name}` })));
    showWarnings(view.warnings ?? [], view.warnings?.length ? 'The server’s warnings for the job just queued.' : null);
  }

  // ---- start ----

  const preset = PRESETS.find((p) => p.id === params.get('preset')) ?? PRESETS.find((p) => p.id === 'cosine_warmup');
  const from = Number(params.get('from'));
  if (Number.isInteger(from) && from > 0) {
    try {
      const source = await get(`/v1/jobs/${from}`);
      const { model, dataset, ...spec } = source.spec;
      if (spec.optimizer) delete spec.optimizer.kind;
      Object.assign(job, spec);
      redrawAll();
    } catch (err) {
      showError(err, `job ${from}`);
      applyPreset(preset);
    }
  } else {
    applyPreset(preset);
  }
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `ui-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}
