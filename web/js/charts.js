// Line charts over uPlot (the global `uPlot`, vendored in /assets/vendor/uplot/).
//
// A Chart draws logical series — a line, optionally smoothed, or a min/max band
// with a mean line — and remembers exactly what it handed to uPlot, so
// "download CSV" exports what is on screen. It marks its <figure> with
// data-state="ready" and data-points once data is drawn, for tests.

import { el, fmt, download, showError } from './dom.js';
import { authLink } from './api.js';

// Ten hues that stay apart for common colour-vision deficiencies (Tableau 10),
// a lighter set for dark backgrounds; a dash pattern per group of ten makes 30
// distinguishable series.
const LIGHT = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DARK = ['#6cb4ee', '#ffa24d', '#5fd35f', '#ff6b6b', '#c39bf0', '#d19a85', '#f7a6dc', '#bdbdbd', '#e0e05a', '#4fe0ef'];
const DASHES = [[], [7, 4], [2, 3]];
const INTEGER_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6].map((p) => m * p)).sort((a, b) => a - b);

const dark = matchMedia('(prefers-color-scheme: dark)');

/** Colour and dash of the i-th series on a chart. */
export function seriesStyle(i) {
  const palette = dark.matches ? DARK : LIGHT;
  return { color: palette[i % palette.length], dash: DASHES[Math.floor(i / palette.length) % DASHES.length] };
}

/** A small SVG sample of a series' line, for legends. */
export function swatch({ color, dash }) {
  return el('svg', { class: 'swatch', viewBox: '0 0 24 8', width: '24', height: '8', 'aria-hidden': 'true' },
    el('line', { x1: '0', y1: '4', x2: '24', y2: '4', stroke: color, 'stroke-width': '2.5', 'stroke-dasharray': dash.join(' ') }));
}

/**
 * TensorBoard's smoothing: an exponential moving average divided by 1 − β^n
 * (n = finite values seen so far) so that the start is not pulled towards 0.
 * Non-finite values pass through and do not enter the average.
 */
export function ema(values, weight) {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - weight ** n);
  });
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

const charts = new Set();
dark.addEventListener('change', () => charts.forEach((c) => c.redraw()));

/** Calls `fn` when the system switches between light and dark (colours change). */
export const onThemeChange = (fn) => dark.addEventListener('change', fn);

export class Chart {
  /**
   * @param {HTMLElement} parent where the figure goes
   * @param {object} o key (for data-testid="chart-<key>"), title, xLabel, yLabel,
   *   svgHref (a server-side SVG of the same chart, or a function returning it),
   *   legend (show uPlot's own legend), onFocus(i|null), onCursor(dataIndex|null)
   */
  constructor(parent, o) {
    this.o = { legend: true, height: 240, ...o };
    this.plot = el('div', { class: 'plot' });
    this.svgLink = authLink(el('a', { class: 'button small', text: 'SVG', title: 'This chart as an SVG image, drawn by the server', 'data-testid': `svg-${o.key}` }),
      `${o.filename ?? o.key}.svg`, (err) => showError(err, 'the SVG chart'));
    this.figure = el('figure', { class: 'chart', 'data-testid': `chart-${o.key}`, dataset: { state: 'loading' } },
      el('figcaption', {},
        el('span', { class: 'title', text: o.title }),
        el('span', { class: 'tools' },
          el('button', { type: 'button', class: 'small', text: 'CSV', title: 'Download what is plotted as CSV', 'data-testid': `csv-${o.key}`, onclick: () => this.downloadCsv() }),
          o.svgHref ? this.svgLink : null)),
      this.plot);
    parent.append(this.figure);
    this.resize = new ResizeObserver(() => this.u?.setSize(this.size()));
    this.resize.observe(this.plot);
    charts.add(this);
  }

  size() {
    const width = Math.max(200, this.plot.clientWidth);
    return { width, height: width < 480 ? Math.min(this.o.height, 200) : this.o.height };
  }

  /**
   * Draws `x` against `series`: [{label, values?, band?: {min, max}, smooth?
   * (default true), stepped? (each value holds until the next x: rates per
   * epoch or step), hidden?, styleIndex? (colour slot, default: position)}]. `view`: {logx, logy, smooth (EMA weight,
   * 0 = off), marker?: {x, label}}.
   */
  draw(x, series, view = {}) {
    this.last = { x, series, view };
    const href = typeof this.o.svgHref === 'function' ? this.o.svgHref(view) : this.o.svgHref;
    if (href) this.svgLink.href = href;
    const { data, specs, bands, owner, mains } = this.build(x, series, view);
    this.columns = specs.map((s, i) => ({ label: s.label, values: data[i + 1], show: s.show }));
    this.x = data[0];
    const points = data.slice(1).reduce((n, col) => n + col.filter((v) => v !== null && v !== undefined).length, 0);
    this.figure.dataset.state = points > 0 ? 'ready' : 'empty';
    this.figure.dataset.points = String(points);
    this.figure.dataset.series = String(series.length);
    const shape = JSON.stringify([specs.map((s) => [s.label, s.stroke, s.show]), view.logx, view.logy, dark.matches]);
    if (points === 0) {
      this.destroyPlot();
      this.plot.replaceChildren(el('p', { class: 'empty', text: this.o.empty ?? 'No data yet.' }));
      return;
    }
    this.marker = view.marker;
    if (this.u && this.shape === shape) {
      this.u.setData(data);
      return;
    }
    this.destroyPlot();
    this.plot.replaceChildren();
    this.shape = shape;
    this.owner = owner;
    this.mains = mains;
    this.u = new uPlot(this.options(specs, bands, view), data, this.plot);
  }

  /** Rebuilds with the last data, e.g. after the colour scheme changed. */
  redraw() {
    if (!this.last) return;
    this.shape = null;
    this.draw(this.last.x, this.last.series, this.last.view);
  }

  build(x, series, view) {
    const keep = x.map((v) => !view.logx || v > 0);
    const pick = (values) => values.filter((_, i) => keep[i]).map((v) => (view.logy && !(v > 0) ? null : v ?? null));
    const data = [x.filter((_, i) => keep[i])];
    const specs = [];
    const bands = [];
    const owner = [null];
    const mains = new Map();
    const push = (logical, spec, values) => {
      specs.push(spec);
      data.push(pick(values));
      owner.push(logical);
      return data.length - 1;
    };
    series.forEach((s, i) => {
      const { color, dash } = seriesStyle(s.styleIndex ?? i);
      const show = !s.hidden;
      if (s.band) {
        const hi = push(i, { label: `${s.label} max`, stroke: withAlpha(color, s.values ? 0.5 : 1), width: s.values ? 1 : 1.5, dash, show, points: { show: false } }, s.band.max);
        const lo = push(i, { label: `${s.label} min`, stroke: withAlpha(color, s.values ? 0.5 : 1), width: s.values ? 1 : 1.5, dash, show, points: { show: false } }, s.band.min);
        bands.push({ series: [hi, lo], fill: withAlpha(color, 0.15) });
        if (!s.values) mains.set(i, hi);
      }
      if (!s.values) return;
      const smooth = view.smooth > 0 && s.smooth !== false;
      if (smooth) {
        push(i, { label: `${s.label} (raw)`, stroke: withAlpha(color, 0.3), width: 1, dash, show, points: { show: false } }, s.values);
        mains.set(i, push(i, { label: `${s.label} (smoothed)`, stroke: color, width: 2, dash, show }, ema(s.values, view.smooth)));
      } else {
        const paths = s.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
        mains.set(i, push(i, { label: s.label, stroke: color, width: 2, dash, show, paths }, s.values));
      }
    });
    return { data, specs, bands, owner, mains };
  }

  options(specs, bands, view) {
    const fg = cssVar('--muted') || '#666';
    const grid = cssVar('--grid') || '#ddd';
    const axis = (label, extra = {}) => ({
      label, stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, ...extra,
    });
    const chart = this;
    return {
      ...this.size(),
      scales: { x: { time: false, distr: view.logx ? 3 : 1 }, y: { distr: view.logy ? 3 : 1 } },
      // x is always a count (epoch, update, step t): whole-number ticks only.
      axes: [axis(this.o.xLabel, { incrs: INTEGER_INCRS }), axis(this.o.yLabel, { size: 60, values: (u, splits) => splits.map((v) => (v === null ? '' : fmt(v, 3))) })],
      series: [{ label: this.o.xLabel }, ...specs.map((s) => ({ ...s, spanGaps: false, value: (u, v) => fmt(v) }))],
      bands,
      legend: { show: this.o.legend },
      focus: { alpha: 0.25 },
      cursor: { focus: { prox: 24 } },
      hooks: {
        draw: [(u) => chart.drawMarker(u)],
        setSeries: [(u, i) => chart.o.onFocus?.(i === null ? null : chart.owner[i])],
        setCursor: [(u) => chart.o.onCursor?.(u.cursor.idx ?? null)],
      },
    };
  }

  /** A dashed vertical line, e.g. the end of the job on a schedule preview. */
  drawMarker(u) {
    const m = this.marker;
    if (!m) return;
    const ctx = u.ctx;
    const cx = u.valToPos(m.x, 'x', true);
    const { top, height } = u.bbox;
    ctx.save();
    ctx.strokeStyle = cssVar('--accent') || '#c00';
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = devicePixelRatio * 1.5;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(cx, top);
    ctx.lineTo(cx, top + height);
    ctx.stroke();
    ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.textAlign = 'right';
    ctx.fillText(m.label, cx - 4 * devicePixelRatio, top + 14 * devicePixelRatio);
    ctx.restore();
  }

  /** Emphasises logical series i (null: none), as hovering it does. */
  highlight(i) {
    if (!this.u) return;
    this.u.setSeries(i === null ? null : this.mains.get(i) ?? null, { focus: true });
  }

  /** Value of each logical series' main line at a data index (for legends). */
  valuesAt(idx) {
    const out = new Map();
    if (!this.u || idx === null) return out;
    for (const [i, k] of this.mains) out.set(i, this.u.data[k][idx]);
    return out;
  }

  /** The plotted data as CSV: x, then one column per visible series. */
  csv() {
    const cols = (this.columns ?? []).filter((c) => c.show);
    const quote = (s) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    const lines = [[this.o.xLabel, ...cols.map((c) => c.label)].map(quote).join(',')];
    (this.x ?? []).forEach((x, i) => {
      // 12 significant digits: the values as drawn, without float noise such as 0.18249999999999997.
      lines.push([x, ...cols.map((c) => (c.values[i] === null || c.values[i] === undefined ? '' : Number(c.values[i].toPrecision(12))))].join(','));
    });
    return `${lines.join('\n')}\n`;
  }

  downloadCsv() {
    download(`${this.o.filename ?? this.o.key}.csv`, this.csv());
  }

  destroyPlot() {
    this.u?.destroy();
    this.u = null;
    this.shape = null;
  }
}
