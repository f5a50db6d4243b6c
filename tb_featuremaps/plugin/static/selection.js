// The selection rules, in one place: what the user chose (the hash state), how it is corrected to what the runs
// listing and a layer's steps hold, and what each view then shows. Plain functions over plain objects: no DOM, no
// fetch. `runs` are the runs route's entries (with layers), `layer` one layer entry (docs/http-api.md).

const DEFAULTS = Object.freeze({
  run: "",
  layer: "",
  probe: 0,
  step: null, // null: the latest step
  follow: true, // jump to new steps as they are logged; in the hash as "no step"
  view: "activations", // or "weights", "strongest" (what each filter looks for), "layers" (all layers at once), "convergence"
  cmap: "gray",
  norm: "filter", // or "layer"
  compare: "off", // "steps" or "runs"
  compareStep: null, // null: the first step
  compareRun: "",
  filter: null, // the filter shown in the detail view
  heat: "mean", // the heat strip: "mean" activation or "change" since the previous step
  sort: "index", // the grid's filters by number, or by "selectivity" (selectivity.js)
});

const INTEGERS = new Set(["probe", "step", "compareStep", "filter"]);
const CHOICES = {
  view: ["activations", "weights", "strongest", "layers", "convergence"],
  norm: ["filter", "layer"],
  compare: ["off", "steps", "runs"],
  heat: ["mean", "change"],
  sort: ["index", "selectivity"],
};

// The hash round trip ---------------------------------------------------------------------------------

/** The selection a hash (without "#") stands for; anything missing or malformed is left at its default. */
export function fromHash(text) {
  const params = new URLSearchParams(text);
  const state = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    const value = params.get(key);
    if (value == null) continue;
    if (INTEGERS.has(key)) {
      if (/^\d+$/.test(value)) state[key] = Number(value);
    } else if (!CHOICES[key] || CHOICES[key].includes(value)) {
      state[key] = value;
    }
  }
  state.follow = state.step == null;
  return state;
}

/** The hash of the non-default parts of `state`: the step only when not following, a compare target only in use. */
export function toHash(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (!(key in DEFAULTS) || key === "follow" || value === DEFAULTS[key] || value == null) continue;
    if (key === "step" && state.follow) continue;
    if ((key === "compareStep" && state.compare !== "steps") || (key === "compareRun" && state.compare !== "runs")) continue;
    params.set(key, String(value));
  }
  return params.toString();
}

// Changes ----------------------------------------------------------------------------------------------

/** `state` with `patch` applied: another run or layer closes the filter; a step keeps following only if it is the last. */
export function change(state, patch, steps) {
  const next = { ...state, ...patch };
  const moved = (key) => key in patch && patch[key] !== state[key];
  if ((moved("run") || moved("layer")) && !("filter" in patch)) next.filter = null;
  if ("step" in patch && !("follow" in patch)) next.follow = state.follow && patch.step === steps[steps.length - 1];
  return next;
}

// What a layer offers -----------------------------------------------------------------------------------

/** The tiles of `kind` ("activations", "weights" or "strongest"): the layer's grid layout (docs/format.md), or null. */
export const layoutOf = (layer, kind) => (kind === "weights" ? layer.weights : kind === "strongest" ? layer.strongest : layer);

/** Whether the frames of `kind` come with stats (so with values, ranges and dead flags): activations that logged them. */
export const hasStats = (layer, kind) => kind === "activations" && Boolean(layer.has_stats);

/** Whether the probe changes what `kind` shows: kernels and the strongest pool inputs do not depend on it. */
export const probeMatters = (kind) => kind === "activations";

/** The probe a grid of `kind` is read for. */
const gridProbe = (kind, probe) => (probeMatters(kind) ? probe : 0);

/**
 * Which choices the toolbar offers (true: it can be picked): the weights view, each scale, comparing runs. A per-layer
 * scale needs stats; a layer logged on one scale (1x1 maps) has no per-filter one, that would be the same.
 */
export function offers(runs, layer, kind) {
  return {
    weights: Boolean(layer.weights),
    strongest: Boolean(layer.strongest),
    perLayer: hasStats(layer, kind),
    perFilter: !(hasStats(layer, kind) && layer.normalization === "per_layer"),
    compareRuns: runs.length > 1,
  };
}

/** The request for one probe's grid of `layer` at `step`, as the store loads it. */
export function frameSpec(run, layer, kind, step, probe) {
  const normalization = layer.normalization || "per_filter";
  return { run, layer: layer.layer, kind, step, probe: gridProbe(kind, probe), withStats: hasStats(layer, kind), normalization };
}

// Correcting the selection ------------------------------------------------------------------------------

/**
 * What `state` shows among `runs` (non-empty): the chosen run and layer, else the first; the chosen view and scale
 * where the layer has them (the choice itself is kept); probe 0 for a probe the run lacks. Returns
 * {state (corrected), run, layer, kind, all (the all-layers view), convergence (the convergence view), norm, layout, labels}.
 */
export function resolve(state, runs) {
  const run = runs.find((entry) => entry.run === state.run) || runs[0];
  const layer = run.layers.find((entry) => entry.layer === state.layer) || run.layers[0];
  const offered = offers(runs, layer, state.view);
  const kind = (state.view === "weights" && offered.weights) || (state.view === "strongest" && offered.strongest) ? state.view : "activations";
  const scales = offers(runs, layer, kind);
  const norm = !scales.perLayer ? "filter" : !scales.perFilter ? "layer" : state.norm;
  const labels = (run.probes ? run.probes.labels : layer.probe_labels).map(String);
  const probe = state.probe < labels.length ? state.probe : 0;
  const all = state.view === "layers";
  const convergence = state.view === "convergence";
  return { state: { ...state, run: run.run, layer: layer.layer, probe }, run, layer, kind, all, convergence, norm, layout: layoutOf(layer, kind), labels };
}

/** Index of the last of `steps` (ascending) at or before `step`, or 0. */
export function nearestIndex(steps, step) {
  let best = 0;
  steps.forEach((candidate, index) => candidate <= step && (best = index));
  return best;
}

/** The step of another series shown beside `step`: the last at or before it, or its first. */
export const nearestStep = (steps, step) => steps[nearestIndex(steps, step)];

/** The runs one can compare `run` with. */
export const otherRuns = (runs, run) => runs.filter((entry) => entry.run !== run);

/**
 * `shown` (from resolve) corrected for its layer's `steps` (non-empty): the last step when following, else the
 * nearest logged at or before the chosen one; a compared step that is logged, else the first; a compared run that
 * exists, else none and no run comparison; no filter beyond the grid's. Adds `steps` and `index` (the step's).
 */
export function settle(shown, steps, runs) {
  const state = { ...shown.state };
  const index = state.follow || state.step == null ? steps.length - 1 : nearestIndex(steps, state.step);
  state.step = steps[index];
  if (state.compareStep == null || !steps.includes(state.compareStep)) state.compareStep = steps[0];
  const others = otherRuns(runs, state.run);
  if (!others.some((entry) => entry.run === state.compareRun)) state.compareRun = others[0]?.run ?? "";
  if (state.compare === "runs" && !others.length) state.compare = "off";
  if (state.filter != null && state.filter >= shown.layout.filters_shown) state.filter = null;
  return { ...shown, state, steps, index };
}

/** The compared run's layer of the same name when it has the shown kind, else null. */
export function comparedLayer(runs, shown) {
  const run = runs.find((entry) => entry.run === shown.state.compareRun);
  const layer = run?.layers.find((entry) => entry.layer === shown.layer.layer);
  return layer && layoutOf(layer, shown.kind) ? layer : null;
}

/** The filter's parts in the detail view: kernels of depthwise convolutions outnumber the layer's output filters. */
export function filterParts(layer, filter) {
  const activations = filter < layer.filters_shown;
  return { activations, stats: activations && hasStats(layer, "activations") };
}

// Playback ----------------------------------------------------------------------------------------------

/** Where playback starts: the shown step, or the first when the shown one is the last. */
export const playStart = (steps, step) => (step === steps[steps.length - 1] ? steps[0] : step);

/** The step after `step`, or null at the end (or for a step not in `steps`). */
export function nextStep(steps, step) {
  const index = steps.indexOf(step);
  return index < 0 || index >= steps.length - 1 ? null : steps[index + 1];
}
