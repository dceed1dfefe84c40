// The vgzoo TensorBoard tab: a run and its matched partner, side by side.
//
// TensorBoard loads this module in the tab's frame and calls `render()`. It reads
// `./runs` (the folder's vgzoo runs and matched pairs) and `./run?run=...` (one
// run's recorded gradients), and draws both members on shared axes and scales.

import {colourBar, el, format, heatmap, legend, lineChart, logExtent} from './charts.js';

const COLOURS = ['#e8710a', '#1a73e8'];
const NONE = '';
const cache = new Map();
const state = {runs: [], pairs: [], a: NONE, b: NONE, step: null, showNorm: true};
let view = null;

export async function render() {
  document.head.append(el('link', {rel: 'stylesheet', href: './static/style.css'}));
  view = el('main', {class: 'vgzoo'});
  document.body.append(view);
  view.append(el('p', {class: 'status'}, 'Loading the vgzoo runs of this folder…'));
  try {
    const listing = await getJson('./runs');
    state.runs = listing.runs;
    state.pairs = listing.pairs;
  } catch (error) {
    return showError(error);
  }
  if (!state.runs.length) {
    view.replaceChildren(el('p', {class: 'status'},
      'No vgzoo runs in this folder yet: `vgzoo train plain20` and `vgzoo train resnet20` ' +
      'write a matched pair.'));
    return;
  }
  [state.a, state.b] = state.pairs.length ? state.pairs[0] : [state.runs[0].run, NONE];
  // `#run=<run>&partner=<run>` picks the members (a link to a pair; empty partner: none).
  const wanted = new URLSearchParams(location.hash.slice(1));
  if (describe(wanted.get('run'))) {
    state.a = wanted.get('run');
    const partner = wanted.get('partner');
    state.b = partner === null ? defaultPartner(state.a) : describe(partner) ? partner : NONE;
  }
  await update();
}

async function getJson(url) {
  if (!cache.has(url)) {
    cache.set(url, fetch(url).then(async (response) => {
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      return body;
    }));
  }
  try {
    return await cache.get(url);
  } catch (error) {
    cache.delete(url);
    throw error;
  }
}

function showError(error) {
  view.replaceChildren(el('p', {class: 'status error'}, `Could not read the runs: ${error.message}`));
}

function describe(run) {
  return state.runs.find((r) => r.run === run);
}

function shortName(run) {
  const d = describe(run);
  const id = run.split('/').pop();
  return d ? `${d.model} · ${id}` : run;
}

/** The knob that separates the pair, as `residual=true`. */
function knob(d) {
  return d && d.varies ? `${d.varies}=${d.value}` : '';
}

/** The partner a run gets by default: its pair in the folder, else none. */
function defaultPartner(run) {
  const pair = state.pairs.find((p) => p.includes(run));
  return pair ? pair.find((r) => r !== run) : NONE;
}

async function update() {
  const members = [state.a, state.b].filter((run) => run !== NONE);
  const hash = new URLSearchParams({run: state.a, partner: state.b}).toString();
  // Absolute: a relative URL would resolve against the frame's <base>.
  history.replaceState(null, '', `${location.pathname}${location.search}#${hash}`);
  const status = el('p', {class: 'status'}, `Loading ${members.join(' and ')}…`);
  view.replaceChildren(controls(), status);
  let data;
  try {
    data = await Promise.all(members.map((run) => getJson(`./run?run=${encodeURIComponent(run)}`)));
  } catch (error) {
    status.textContent = `Could not read the run: ${error.message}`;
    status.classList.add('error');
    return;
  }
  if (members.join() !== [state.a, state.b].filter((run) => run !== NONE).join()) return;
  status.remove();
  const colours = members.map((run, i) => COLOURS[i]);
  const sections = [
    memberCards(data, colours),
    depthSection(data, colours),
    heatmapSection(data, colours, 'depth'),
    data.some((d) => d.timesteps) ? heatmapSection(data, colours, 'timesteps') : null,
    trainingSection(data, colours),
  ];
  view.append(...sections.filter(Boolean));
}

function controls() {
  const pairSelect = el('select', {id: 'vgzoo-pair', onchange: async (event) => {
    if (event.target.value === NONE) return;
    [state.a, state.b] = state.pairs[Number(event.target.value)];
    state.step = null;
    await update();
  }});
  pairSelect.append(el('option', {value: NONE}, state.pairs.length ? 'your choice' : 'no pairs found'));
  state.pairs.forEach((pair, i) => {
    const [a, b] = pair.map(describe);
    const label = `${a.dataset}: ${a.model} vs ${b.model} (${pair.map((r) => r.split('/').pop()).join(' / ')})`;
    pairSelect.append(el('option', {value: i, selected: pair[0] === state.a && pair[1] === state.b},
                         label));
  });
  const runSelect = runSelector('vgzoo-run', state.a, false, async (value) => {
    state.a = value;
    state.b = defaultPartner(value);
    state.step = null;
    await update();
  });
  const partnerSelect = runSelector('vgzoo-partner', state.b, true, async (value) => {
    state.b = value;
    state.step = null;
    await update();
  });
  return el('header', {class: 'controls'}, [
    el('h1', {}, 'Matched pair, side by side'),
    el('label', {}, ['Pair ', pairSelect]),
    el('label', {}, ['Run ', runSelect]),
    el('label', {}, ['Partner ', partnerSelect]),
  ]);
}

function runSelector(id, selected, allowNone, onChange) {
  const select = el('select', {id, onchange: (event) => onChange(event.target.value)});
  if (allowNone) select.append(el('option', {value: NONE, selected: selected === NONE}, '(none)'));
  const partnerModel = allowNone && describe(state.a) ? describe(state.a).partner : null;
  const runs = [...state.runs].sort((x, y) =>
    (y.model === partnerModel) - (x.model === partnerModel) || x.run.localeCompare(y.run));
  for (const r of runs) {
    if (allowNone && r.run === state.a) continue;
    select.append(el('option', {value: r.run, selected: r.run === selected},
                     `${r.run} (${r.model}${r.varies ? `, ${knob(r)}` : ''})`));
  }
  return select;
}

function memberCards(data, colours) {
  return el('section', {class: 'members'}, data.map((d, i) => el('div', {
    class: 'member', 'data-run': d.run, style: `--color: ${colours[i]}`,
  }, [
    el('strong', {}, d.model),
    el('span', {}, ` ${knob(d)} · ${d.dataset} · `),
    el('code', {}, d.run),
  ])));
}

// ---- gradient norm against depth -------------------------------------------------------

function allSteps(data) {
  return [...new Set(data.flatMap((d) => d.steps))].sort((x, y) => x - y);
}

/** The row of `d` recorded at `step`, or the last one before it (the first if none). */
function rowAt(d, step) {
  let best = d.steps.length ? 0 : -1;
  d.steps.forEach((s, i) => { if (s <= step) best = i; });
  return best;
}

function depthPoints(d, row, kind) {
  const points = [];
  let weights = 0;
  d.layers.forEach((layer, i) => {
    if (layer.kind === 'weight') weights += 1;
    if (layer.kind !== kind || row < 0) return;
    const value = d.grad_norm[row][i];
    const x = kind === 'weight' ? weights : weights + 0.5;
    points.push([x, value, `${layer.name}: ${format(value)}`]);
  });
  return points;
}

function depthSection(data, colours) {
  const steps = allSteps(data);
  if (state.step === null || !steps.includes(state.step)) state.step = steps[steps.length - 1];
  const chartBox = el('div', {class: 'chart-box'});
  const label = el('span', {class: 'step-label'});
  const hasNorm = data.some((d) => d.layers.some((l) => l.kind === 'norm'));
  const draw = () => {
    const series = [];
    data.forEach((d, i) => {
      const row = rowAt(d, state.step);
      series.push({label: `${d.model}: weight layers`, color: colours[i],
                   points: depthPoints(d, row, 'weight')});
      if (state.showNorm) {
        series.push({label: `${d.model}: normalisation layers`, color: colours[i], style: 'hollow',
                     points: depthPoints(d, row, 'norm')});
      }
    });
    chartBox.replaceChildren(
      lineChart({id: 'depth', log: true, series, integerX: true,
                 xLabel: 'depth (weight layers, input side first)', yLabel: 'gradient norm'}),
      legend(series.filter((s) => s.points.length)),
    );
    const recorded = data.map((d) => `${d.model} at ${d.steps[rowAt(d, state.step)] ?? 'n/a'}`);
    label.textContent = `training step ${state.step} (${recorded.join(', ')})`;
    document.querySelectorAll('.vgzoo-heatmap[data-kind="depth"]').forEach((f) => f.redraw && f.redraw());
  };
  const slider = el('input', {
    type: 'range', id: 'vgzoo-step', min: 0, max: Math.max(steps.length - 1, 0),
    value: Math.max(steps.indexOf(state.step), 0), 'aria-label': 'training step',
    oninput: (event) => { state.step = steps[Number(event.target.value)]; draw(); },
  });
  const toggle = el('label', {class: hasNorm ? '' : 'hidden'}, [
    el('input', {type: 'checkbox', id: 'vgzoo-show-norm', checked: state.showNorm,
                 onchange: (event) => { state.showNorm = event.target.checked; draw(); }}),
    ' batch-norm and layer-norm layers (open circles)',
  ]);
  const section = el('section', {class: 'card', id: 'vgzoo-depth'}, [
    el('h2', {}, 'Gradient norm per layer against depth'),
    el('div', {class: 'slider'}, [slider, label]),
    toggle,
    chartBox,
  ]);
  draw();
  return section;
}

// ---- heat maps ---------------------------------------------------------------------

function depthColumns(d) {
  const keep = d.layers.map((l, i) => (l.kind === 'weight' ? i : -1)).filter((i) => i >= 0);
  return {columns: d.grad_norm.map((row) => keep.map((i) => row[i])), steps: d.steps,
          first: d.layers[keep[0]]?.name, last: d.layers[keep[keep.length - 1]]?.name};
}

function timestepColumns(d) {
  if (!d.timesteps) return null;
  const length = d.timesteps.norms[0]?.length || 0;
  return {columns: d.timesteps.norms, steps: d.timesteps.steps, first: 't = 1', last: `t = ${length}`};
}

function heatmapSection(data, colours, kind) {
  const maps = data.map(kind === 'depth' ? depthColumns : timestepColumns);
  const range = logExtent(maps.filter(Boolean).map((m) => m.columns));
  const title = kind === 'depth'
    ? 'Gradient norm, weight layer × training step'
    : 'Gradient norm through time, timestep × training step';
  const figures = data.map((d, i) => {
    const map = maps[i];
    const figure = el('figure', {class: 'vgzoo-heatmap', 'data-kind': kind, 'data-run': d.run,
                                 style: `--color: ${colours[i]}`});
    const caption = el('figcaption', {}, [el('strong', {}, d.model), ` ${knob(d)} · ${d.run}`]);
    if (!map || !map.columns.length) {
      figure.append(caption, el('p', {class: 'empty'}, 'nothing recorded'));
      return figure;
    }
    const body = el('div', {class: 'heat-body'});
    figure.redraw = () => {
      const marker = kind === 'depth' ? map.steps.indexOf(d.steps[rowAt(d, state.step)]) : null;
      body.replaceChildren(heatmap({columns: map.columns, range, marker,
                                    label: `${title}: ${d.model}`}));
    };
    figure.redraw();
    const yAxis = kind === 'depth' ? 'depth ↓' : 'timestep ↓';
    figure.append(
      caption,
      el('div', {class: 'y-ends'}, [el('span', {}, `${yAxis} top: ${map.first}`),
                                    el('span', {}, `bottom: ${map.last}`)]),
      body,
      el('div', {class: 'x-ends'}, [el('span', {}, `step ${map.steps[0]}`),
                                    el('span', {}, 'training step →'),
                                    el('span', {}, `step ${map.steps[map.steps.length - 1]}`)]),
    );
    return figure;
  });
  return el('section', {class: 'card', id: `vgzoo-heatmaps-${kind}`}, [
    el('h2', {}, title),
    el('p', {class: 'note'}, 'One log colour scale for both runs: the same colour is the same norm.'),
    el('div', {class: 'heatmaps'}, figures),
    range ? colourBar(range, 'gradient norm (log scale)') : null,
  ]);
}

// ---- over training -------------------------------------------------------------------

function seriesPoints(series) {
  return series ? series.steps.map((s, i) => [s, series.values[i]]) : [];
}

function trainingSection(data, colours) {
  const charts = [];
  const add = (id, title, yLabel, xLabel, seriesList, log = false) => {
    if (!seriesList.some((s) => s.points.length)) return;
    const positive = seriesList.every((s) => s.points.every(([, y]) => y === null || y > 0));
    charts.push(el('figure', {class: 'small-chart'}, [
      el('figcaption', {}, title),
      lineChart({id, xLabel, yLabel, series: seriesList, log: log && positive, width: 440,
                 height: 260}),
      legend(seriesList.filter((s) => s.points.length)),
    ]));
  };
  const each = (pick, extra = {}) => data.map((d, i) => ({
    label: `${d.model}${extra.suffix || ''}`, color: colours[i], dash: extra.dash,
    points: seriesPoints(pick(d)),
  }));
  add('vanishing_ratio', 'Vanishing ratio: log10(first layer / last layer gradient norm)',
      'vanishing ratio', 'training step', each((d) => d.series.vanishing_ratio));
  add('grad_reach', 'Gradient reach: log10(first / last timestep gradient norm)',
      'grad reach', 'training step', each((d) => d.series.grad_reach));
  add('step_loss', 'Loss at each step', 'step loss', 'training step',
      each((d) => d.series.step_loss), true);
  add('epoch_loss', 'Loss per epoch: train (solid), validation (dashed)', 'epoch loss', 'epoch',
      [...each((d) => d.series.epoch_loss, {suffix: ' train'}),
       ...each((d) => d.validation_loss, {suffix: ' validation', dash: true})], true);
  return el('section', {class: 'card', id: 'vgzoo-training'}, [
    el('h2', {}, 'Over training'),
    el('div', {class: 'small-charts'}, charts),
  ]);
}
