// Asking before the user does. A layer's latest grid is asked for beside its steps, not after them (the runs listing
// carries its last step and wall time), so a layer never seen before paints after one round trip. Once a layer is
// painted and the selection rests, what the user is likely to open next (the layers beside it in the list, then the
// probes beside the shown one, at the shown step) is loaded in the background, a few requests at a time and after the
// step prefetch (store.js readAhead), so opening it paints from the cache. Any new selection drops what has not started.
import { frameSpec, hasStats, probeMatters, resolve, settle } from "./selection.js";
import { version } from "./store.js";

const REST_MS = 250; // the selection must rest this long before reading ahead: scrubbing and playback never do

/**
 * Asks for what `resolved` (selection.js resolve) paints first when it shows its layer's latest step: the grid, the
 * step's stats and the activity (the dead filters). Failures are left to the requests that paint, which ask again.
 */
export function loadLatest(store, resolved) {
  const { state, run, layer, kind, all } = resolved;
  const latest = state.follow || state.step == null || state.step >= layer.last_step;
  if (all || kind !== "activations" || !latest || layer.last_wall_time == null) return;
  store.knowWallTime(run.run, layer.layer, kind, layer.last_step, layer.last_wall_time);
  const ignore = () => {};
  store.frame(frameSpec(run.run, layer, kind, layer.last_step, state.probe)).catch(ignore);
  if (hasStats(layer, kind)) store.activity(run.run, layer.layer, version(layer)).catch(ignore);
}

/**
 * What opening `next` (resolve's answer for another layer) loads before it paints, as read-ahead tasks that each make
 * at most one request: its steps, then its grid and stats at the step it would show (`settle`), its activity, its change.
 */
function openTasks(store, next, runs) {
  const { run, layer, kind } = next;
  const steps = () => store.steps(run.run, layer.layer, kind, version(layer));
  const atShownStep = (load) => async () => {
    const answer = await steps(); // the task above asks for them: no second request
    if (answer.steps.length) await load(frameSpec(run.run, layer, kind, settle(next, answer.steps, runs).state.step, next.state.probe));
  };
  const tasks = [steps, atShownStep((spec) => image(store, spec))];
  if (hasStats(layer, kind)) {
    tasks.push(atShownStep((spec) => store.stats(spec.run, spec.layer, spec.step)));
    tasks.push(() => store.activity(run.run, layer.layer, version(layer)));
  }
  if (layer.has_change) tasks.push(() => store.change(run.run, layer.layer, version(layer)));
  if (kind === "strongest") tasks.push(atShownStep((spec) => store.topk(spec.run, spec.layer, spec.step)));
  return tasks;
}

/** The grid image of a frameSpec, without its stats. */
const image = (store, { run, layer, kind, step, probe }) => store.image(run, layer, kind, step, probe);

/**
 * The read-ahead tasks after `shown` (selection.js settle) is painted: opening the next layer in the list, then the
 * previous one, then the shown layer's next and previous probes at the shown step.
 */
export function neighbourTasks(store, shown, runs) {
  const { state, run, layer, kind, labels } = shown;
  const index = run.layers.indexOf(layer);
  const tasks = [run.layers[index + 1], run.layers[index - 1]]
    .filter(Boolean)
    .flatMap((other) => openTasks(store, resolve({ ...state, layer: other.layer }, runs), runs));
  if (probeMatters(kind)) {
    for (const probe of [state.probe + 1, state.probe - 1]) {
      if (probe >= 0 && probe < labels.length) tasks.push(() => image(store, frameSpec(run.run, layer, kind, state.step, probe)));
    }
  }
  return tasks;
}

/** Reads the neighbours of what is shown once the selection rests; `cancel()` on every new selection. */
export class ReadAhead {
  constructor(store) {
    this.store = store;
    this.timer = 0;
  }

  /** A new selection: nothing read ahead for the one before starts any more (requests already made finish). */
  cancel() {
    clearTimeout(this.timer);
    this.store.readAhead([]);
  }

  /** `shown` is painted: reads its neighbours ahead after REST_MS if `current()` still says it is the one shown. */
  after(shown, runs, current) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => current() && this.store.readAhead(neighbourTasks(this.store, shown, runs)), REST_MS);
  }
}
