// The chart controls shared by the job and compare pages — log x, log y and
// smoothing — read from and written to the URL so a view is a shareable link.

import { el } from './dom.js';

/** The EMA weight used when smoothing is switched on without a value. */
export const DEFAULT_SMOOTHING = 0.6;

export function readView(params) {
  const smooth = Number(params.get('smooth') ?? 0);
  return {
    logx: params.get('logx') === '1',
    logy: params.get('logy') === '1',
    smooth: smooth > 0 && smooth < 1 ? smooth : 0,
  };
}

export const viewParams = (v) => ({ logx: v.logx ? 1 : 0, logy: v.logy ? 1 : 0, smooth: v.smooth });

/** Checkboxes for log x / log y and a smoothing switch with its weight; calls onChange(view). */
export function viewControls(view, onChange) {
  const box = (id, label, checked, title) => {
    const input = el('input', { type: 'checkbox', id, checked, 'data-testid': id });
    return [input, el('label', { for: id, class: 'check', title }, input, ` ${label}`)];
  };
  const [logx, logxLabel] = box('logx', 'log x', view.logx, 'Logarithmic x axis');
  const [logy, logyLabel] = box('logy', 'log y', view.logy, 'Logarithmic y axis');
  const [smooth, smoothLabel] = box('smooth', 'smooth', view.smooth > 0,
    'Exponential moving average, debiased as in TensorBoard, drawn over the faded raw curve; never on learning rates');
  const weight = el('input', {
    type: 'range', id: 'smooth-weight', min: '0.05', max: '0.99', step: '0.01',
    value: String(view.smooth || DEFAULT_SMOOTHING), disabled: !(view.smooth > 0),
    'aria-label': 'Smoothing weight', 'data-testid': 'smooth-weight',
  });
  const weightText = el('output', { for: 'smooth-weight', class: 'muted small', text: Number(weight.value).toFixed(2) });
  const emit = () => {
    weight.disabled = !smooth.checked;
    weightText.textContent = Number(weight.value).toFixed(2);
    onChange({ logx: logx.checked, logy: logy.checked, smooth: smooth.checked ? Number(weight.value) : 0 });
  };
  for (const input of [logx, logy, smooth]) input.addEventListener('change', emit);
  weight.addEventListener('input', emit);
  return el('div', { class: 'view-controls', role: 'group', 'aria-label': 'Chart options' },
    logxLabel, logyLabel, smoothLabel, weight, weightText);
}
