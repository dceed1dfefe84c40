// Drawing for the vgzoo tab, dependency-free: inline SVG line charts, canvas heat maps.

const SVG = 'http://www.w3.org/2000/svg';

/** An HTML element with attributes and children (strings become text). */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element with attributes and children. */
export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A number for a label: 3 significant digits, exponent form when tiny or huge. */
export function format(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  if (value === 0) return '0';
  const size = Math.abs(value);
  if (size >= 1e4 || size < 1e-2) return value.toExponential(1).replace('e+', 'e');
  return String(Number(value.toPrecision(3)));
}

function powerLabel(exponent) {
  return exponent === 0 ? '1' : `1e${exponent}`;
}

/** A linear or log10 scale from `domain` to `range`, with ticks. */
export function scale([lo, hi], [start, end], log = false, integer = false) {
  const f = log ? Math.log10 : (x) => x;
  let a = f(lo);
  let b = f(hi);
  if (!(b > a)) {
    a -= log ? 0.5 : Math.abs(a) * 0.1 || 1;
    b += log ? 0.5 : Math.abs(b) * 0.1 || 1;
  }
  const map = (x) => start + ((f(x) - a) / (b - a)) * (end - start);
  map.ticks = () => (log ? logTicks(a, b) : linearTicks(a, b, integer));
  return map;
}

function logTicks(a, b) {
  const first = Math.ceil(a - 1e-9);
  const last = Math.floor(b + 1e-9);
  if (last - first >= 2) {
    const step = Math.max(1, Math.ceil((last - first + 1) / 7));
    const ticks = [];
    for (let k = first; k <= last; k += step) ticks.push({value: 10 ** k, label: powerLabel(k)});
    return ticks;
  }
  // Less than two decades: 1, 2 and 5 times the powers of ten inside the range.
  const ticks = [];
  for (let k = Math.floor(a) - 1; k <= Math.ceil(b); k += 1) {
    for (const m of [1, 2, 5]) {
      const value = m * 10 ** k;
      const l = Math.log10(value);
      if (l >= a - 1e-9 && l <= b + 1e-9) ticks.push({value, label: format(value)});
    }
  }
  // A narrow range (within a factor of 2.5 or so): evenly spaced values read better.
  return ticks.length >= 2 ? ticks : linearTicks(10 ** a, 10 ** b).filter((tick) => tick.value > 0);
}

function linearTicks(a, b, integer = false) {
  const raw = (b - a) / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((s) => raw / s <= 1) || power * 10;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks = [];
  for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) {
    const value = Math.abs(v) < step * 1e-9 ? 0 : v;
    ticks.push({value, label: format(value)});
  }
  return ticks;
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * A line chart. `series`: [{label, color, points: [[x, y, tooltip?]], dash, style}],
 * style 'line' (default, with dots when few points), 'hollow' (open circles only).
 * Points that a log axis cannot show (<= 0) and missing values are dropped.
 */
export function lineChart({id, xLabel, yLabel, log = false, series, xDomain, integerX = null,
                           width = 640, height = 250}) {
  const margin = {left: 64, right: 16, top: 12, bottom: 42};
  const shown = series.map((s) => ({
    ...s,
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!log || y > 0)),
  }));
  const all = shown.flatMap((s) => s.points);
  const root = svg('svg', {
    class: 'vgzoo-chart', 'data-chart': id, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': `${yLabel} against ${xLabel}`,
  });
  if (!all.length) {
    root.append(svg('text', {x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'empty'},
                    'no data recorded'));
    return root;
  }
  const xs = all.map((p) => p[0]);
  const x = scale(xDomain || extent(xs), [margin.left, width - margin.right], false,
                  integerX ?? xs.every(Number.isInteger));
  const y = scale(extent(all.map((p) => p[1])), [height - margin.bottom, margin.top], log);
  const axes = svg('g', {class: 'axes'});
  for (const tick of y.ticks()) {
    const ty = y(tick.value);
    if (ty < margin.top - 1 || ty > height - margin.bottom + 1) continue;
    axes.append(svg('line', {x1: margin.left, x2: width - margin.right, y1: ty, y2: ty, class: 'grid'}),
                svg('text', {x: margin.left - 6, y: ty + 4, 'text-anchor': 'end'}, tick.label));
  }
  for (const tick of x.ticks()) {
    const tx = x(tick.value);
    if (tx < margin.left - 1 || tx > width - margin.right + 1) continue;
    axes.append(svg('line', {x1: tx, x2: tx, y1: height - margin.bottom, y2: height - margin.bottom + 4}),
                svg('text', {x: tx, y: height - margin.bottom + 16, 'text-anchor': 'middle'}, tick.label));
  }
  axes.append(
    svg('line', {x1: margin.left, x2: width - margin.right, y1: height - margin.bottom,
                 y2: height - margin.bottom}),
    svg('text', {x: (margin.left + width - margin.right) / 2, y: height - 6, 'text-anchor': 'middle',
                 class: 'label'}, xLabel),
    svg('text', {x: 14, y: (margin.top + height - margin.bottom) / 2, 'text-anchor': 'middle',
                 class: 'label', transform: `rotate(-90 14 ${(margin.top + height - margin.bottom) / 2})`},
        yLabel + (log ? ' (log)' : '')),
  );
  root.append(axes);
  for (const s of shown) {
    const group = svg('g', {class: `series ${s.style || 'line'}`, 'data-label': s.label});
    if (s.style !== 'hollow' && s.points.length > 1) {
      const d = s.points.map(([px, py], i) => `${i ? 'L' : 'M'}${x(px).toFixed(1)},${y(py).toFixed(1)}`);
      group.append(svg('path', {d: d.join(''), stroke: s.color, fill: 'none',
                                'stroke-dasharray': s.dash ? '6 4' : null}));
    }
    if (s.style === 'hollow' || s.points.length <= 60) {
      for (const [px, py, tip] of s.points) {
        const dot = svg('circle', {
          cx: x(px).toFixed(1), cy: y(py).toFixed(1), r: s.style === 'hollow' ? 3.5 : 2.5,
          stroke: s.color, fill: s.style === 'hollow' ? 'white' : s.color,
        });
        if (tip) dot.append(svg('title', {}, tip));
        group.append(dot);
      }
    }
    root.append(group);
  }
  return root;
}

/** A legend: a swatch and label per series (dashed or hollow as drawn). */
export function legend(items) {
  return el('div', {class: 'legend'}, items.map((item) => el('span', {class: 'item'}, [
    el('span', {class: `swatch ${item.style || ''} ${item.dash ? 'dash' : ''}`,
                style: `--color: ${item.color}`}),
    item.label,
  ])));
}

// Viridis, sampled: dark for small gradients, yellow for large.
const STOPS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779',
               '#6ece58', '#b5de2b', '#fde725'];
const STOP_RGB = STOPS.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));

/** The colour of `t` in [0, 1]. */
export function colour(t) {
  const u = Math.min(1, Math.max(0, t)) * (STOP_RGB.length - 1);
  const i = Math.min(STOP_RGB.length - 2, Math.floor(u));
  const f = u - i;
  const rgb = STOP_RGB[i].map((c, k) => Math.round(c + (STOP_RGB[i + 1][k] - c) * f));
  return `rgb(${rgb.join(',')})`;
}

/** log10 [min, max] over the positive finite values of several matrices: one shared scale. */
export function logExtent(matrices) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const matrix of matrices) {
    for (const row of matrix) {
      for (const v of row) {
        if (v > 0 && Number.isFinite(v)) {
          const l = Math.log10(v);
          if (l < lo) lo = l;
          if (l > hi) hi = l;
        }
      }
    }
  }
  if (!Number.isFinite(lo)) return null;
  return hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5];
}

/**
 * A heat map on a canvas: `columns[c][r]` (c: training step, r: depth or timestep),
 * coloured on the shared log10 `range`; missing or zero values grey. `marker`: a column to outline.
 */
export function heatmap({columns, range, marker = null, width = 420, height = 220, label}) {
  const canvas = el('canvas', {class: 'vgzoo-heatmap-canvas', 'aria-label': label, role: 'img'});
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = '100%';
  canvas.style.aspectRatio = `${width} / ${height}`;
  const context = canvas.getContext('2d');
  if (!context) return canvas;
  context.scale(ratio, ratio);
  const count = columns.length;
  const rows = count ? Math.max(...columns.map((c) => c.length)) : 0;
  context.fillStyle = '#e0e0e0';
  context.fillRect(0, 0, width, height);
  if (!count || !rows || !range) return canvas;
  const cellW = width / count;
  const cellH = height / rows;
  const [lo, hi] = range;
  columns.forEach((column, c) => {
    column.forEach((v, r) => {
      if (!(v > 0 && Number.isFinite(v))) return;
      context.fillStyle = colour((Math.log10(v) - lo) / (hi - lo));
      context.fillRect(c * cellW, r * cellH, Math.ceil(cellW), Math.ceil(cellH));
    });
  });
  if (marker !== null && marker >= 0) {
    context.strokeStyle = '#ff1744';
    context.lineWidth = 2;
    context.strokeRect(marker * cellW + 1, 1, Math.max(cellW - 2, 2), height - 2);
  }
  return canvas;
}

/** A horizontal colour bar for a log10 `range`, ticks at powers of ten. */
export function colourBar(range, title) {
  const width = 420;
  const height = 44;
  const id = `gradient-${Math.random().toString(36).slice(2)}`;
  const stops = STOPS.map((c, i) => svg('stop', {offset: `${(100 * i) / (STOPS.length - 1)}%`,
                                               'stop-color': c}));
  const root = svg('svg', {class: 'vgzoo-colourbar', viewBox: `0 0 ${width} ${height}`},
                   [svg('defs', {}, [svg('linearGradient', {id}, stops)])]);
  root.append(svg('rect', {x: 10, y: 4, width: width - 20, height: 12, fill: `url(#${id})`}));
  const [lo, hi] = range;
  const x = scale([10 ** lo, 10 ** hi], [10, width - 10], true);
  for (const tick of x.ticks()) {
    root.append(svg('line', {x1: x(tick.value), x2: x(tick.value), y1: 16, y2: 20}),
                svg('text', {x: x(tick.value), y: 31, 'text-anchor': 'middle'}, tick.label));
  }
  root.append(svg('text', {x: width / 2, y: 42, 'text-anchor': 'middle', class: 'label'}, title));
  return root;
}
