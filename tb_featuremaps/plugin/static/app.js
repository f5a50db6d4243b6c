// The panel's controller: owns the selection, polls for new data, and keeps every part in step.
import * as api from "./api.js";
import { colormap } from "./colormaps.js";
import { Detail } from "./detail.js";
import { el, formatShape, stepText } from "./dom.js";
import { emptyState } from "./empty.js";
import { GridView } from "./grid.js";
import { HeatStrip } from "./heatstrip.js";
import { Legend } from "./legend.js";
import { Notice } from "./notice.js";
import { ProbePicker } from "./probes.js";
import { displayRange, paintTiles } from "./render.js";
import { readHash, writeHash } from "./state.js";
import { StepBar } from "./stepbar.js";
import { frameSpec, Store } from "./store.js";
import { followTheme } from "./theme.js";
import { fillSelect, Toolbar } from "./toolbar.js";

const POLL_MS = 3000;
const PLAY_MS = 8000; // playback runs through all steps in about this long…
const FRAME_MS = [80, 400]; // …showing each step at least / at most this long
const PREFETCH_AROUND = 8;
const PREFETCH_ALL = 64; // prefetch every step of layers with at most this many

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Changes when a layer logs new steps, so cached answers that span steps are refetched. */
const version = (layer) => `${layer.step_count}:${layer.last_step}`;

/** Index of the last step ≤ `step` (or 0). */
function nearestIndex(steps, step) {
  let best = 0;
  steps.forEach((candidate, index) => candidate <= step && (best = index));
  return best;
}

export function startApp(root) {
  const app = new App(root);
  followTheme(() => app.redraw()); // canvases take their colours from the theme when drawn
  app.poll();
}

class App {
  constructor(root) {
    this.root = root;
    this.store = new Store();
    this.state = readHash();
    this.runs = null; // from the runs route, only runs with layers
    this.runsKey = "";
    this.steps = [];
    this.wallTimes = [];
    this.seq = 0;
    this.playing = false;
    this.errors = new Map(); // source -> message
    this.build();
  }

  build() {
    this.message = el("p", { class: "fm-message", role: "alert", hidden: true });
    this.notice = new Notice();
    this.loading = el("p", { class: "fm-loading", text: "Loading feature maps…" });
    this.empty = emptyState();
    this.empty.hidden = true;
    this.toolbar = new Toolbar((patch) => this.set(patch));
    this.probes = new ProbePicker((probe) => this.set({ probe }));
    this.stepbar = new StepBar({
      onStep: (index) => this.set({ step: this.steps[index] }),
      onPlay: () => this.togglePlay(),
      onFollow: (follow) => this.set({ follow }),
    });
    this.summary = el("p", { class: "fm-summary" });
    this.panes = [0, 1].map(() => new GridView((filter) => this.set({ filter })));
    this.compareStep = el("select", { "aria-label": "Step to compare with", onchange: () => this.set({ compareStep: Number(this.compareStep.value) }) });
    this.compareRun = el("select", { "aria-label": "Run to compare with", onchange: () => this.set({ compareRun: this.compareRun.value }) });
    this.legend = new Legend();
    this.heat = new HeatStrip((filter, index) => this.set({ filter, step: this.steps[index] }));
    this.detail = new Detail(this.store, { onPick: (patch) => this.set(patch), onClose: () => this.set({ filter: null }) });
    this.main = el(
      "section",
      { class: "fm-main", "aria-label": "Filters" },
      this.summary,
      el("div", { class: "fm-panes" }, ...this.panes.map((pane) => pane.root)),
      this.legend.root,
      el("section", { class: "fm-activity" }, el("h2", { text: "Mean activation per filter over steps" }), this.heat.root),
    );
    // The pickers and the step slider stay in view while the page scrolls (sticky); the detail view sticks below them.
    const controls = el("div", { class: "fm-controls" }, this.toolbar.root, this.probes.root, this.stepbar.root);
    this.shell = el("div", { class: "fm-shell", hidden: true }, controls, el("div", { class: "fm-body" }, this.main, this.detail.root));
    this.root.append(this.message, this.notice.root, this.loading, this.empty, this.shell);
    new ResizeObserver(() => this.root.style.setProperty("--fm-controls-height", `${controls.offsetHeight}px`)).observe(controls);
    new ResizeObserver(() => this.redraw()).observe(this.main);
    window.addEventListener("hashchange", () => {
      this.state = readHash();
      this.update();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.state.filter != null) this.set({ filter: null });
    });
  }

  /** Draws the grids and the heat strip again (new size or theme). */
  redraw() {
    this.panes.forEach((pane) => pane.draw());
    this.heat.draw();
  }

  /** Shows (or clears, with null) the error of one source; several sources can fail at once. */
  report(source, error) {
    if (error) this.errors.set(source, error.message || String(error));
    else this.errors.delete(source);
    this.message.textContent = [...this.errors.values()].join(" · ");
    this.message.hidden = this.errors.size === 0;
  }

  /** Fetches the runs now and every few seconds (while the page is visible); redraws when anything changed. */
  async poll() {
    if (document.hidden && this.runs) return setTimeout(() => this.poll(), POLL_MS);
    try {
      const { runs, errors } = await api.runs();
      this.report("runs", null);
      this.notice.show(errors);
      const key = JSON.stringify(runs);
      if (key !== this.runsKey) {
        this.runsKey = key;
        this.runs = runs.filter((run) => run.layers && run.layers.length);
        this.update();
      }
    } catch (error) {
      this.report("runs", new Error(`Couldn't list the runs (${error.message}); retrying.`));
    } finally {
      this.loading.hidden = this.runs !== null || this.errors.size > 0;
      setTimeout(() => this.poll(), POLL_MS);
    }
  }

  /** Changes the selection and redraws; resolves once the grid is drawn. */
  set(patch) {
    if ("step" in patch && !("follow" in patch)) patch.follow = patch.step === this.steps[this.steps.length - 1] && this.state.follow;
    Object.assign(this.state, patch);
    return this.update();
  }

  /** Makes the selection valid for the current runs and steps, then redraws every part. */
  async update() {
    const seq = ++this.seq;
    if (!this.runs) return;
    this.empty.hidden = this.runs.length > 0;
    this.shell.hidden = !this.runs.length;
    if (!this.runs.length) return;
    const state = this.state;
    const run = this.runs.find((entry) => entry.run === state.run) || this.runs[0];
    const layer = run.layers.find((entry) => entry.layer === state.layer) || run.layers[0];
    state.run = run.run;
    state.layer = layer.layer;
    // What is shown where the chosen view or scale does not exist for this layer; the choice itself is kept.
    this.view = layer.weights ? state.view : "activations";
    // Tiles logged on one scale per layer (1x1 maps) are shown on it: a per-filter scale would be that same one.
    const perLayer = layer.normalization === "per_layer";
    this.norm = this.view === "activations" && layer.has_stats ? (perLayer ? "layer" : state.norm) : "filter";
    const labels = run.probes ? run.probes.labels : layer.probe_labels;
    if (state.probe >= labels.length) state.probe = 0;
    this.run = run;
    this.layer = layer;
    this.labels = labels.map(String);

    let answer;
    try {
      answer = await this.store.steps(run.run, layer.layer, this.view, version(layer));
      this.report("steps", null);
    } catch (error) {
      if (seq === this.seq) this.report("steps", new Error(`Couldn't list the steps of ${layer.layer} (${error.message}).`));
      return;
    }
    if (seq !== this.seq) return;
    if (!answer.steps.length) {
      this.panes[0].message(`No steps logged for ${layer.layer} yet.`);
      return;
    }
    this.steps = answer.steps;
    this.wallTimes = answer.wall_times;
    const last = this.steps.length - 1;
    const index = state.follow || state.step == null ? last : nearestIndex(this.steps, state.step);
    state.step = this.steps[index];
    if (state.compareStep == null || !this.steps.includes(state.compareStep)) state.compareStep = this.steps[0];
    const others = this.runs.filter((entry) => entry.run !== run.run);
    if (!others.some((entry) => entry.run === state.compareRun)) state.compareRun = others[0]?.run ?? "";
    if (state.compare === "runs" && !others.length) state.compare = "off";
    const layout = this.layout();
    if (state.filter != null && state.filter >= layout.filters_shown) state.filter = null;
    writeHash(state);

    this.toolbar.update(this.runs, layer, { ...state, view: this.view, norm: this.norm });
    this.probes.update(run.run, run.probes, layer.probe_labels, state.probe, this.view === "weights");
    this.stepbar.update({ steps: this.steps, index, unit: layer.step_unit, playing: this.playing, follow: state.follow, wallTime: this.wallTimes[index] });
    const drawn = this.drawGrids(seq);
    this.drawHeat(seq);
    this.showDetail();
    this.prefetch(index);
    await drawn;
  }

  layout() {
    return this.view === "weights" ? this.layer.weights : this.layer;
  }

  /** What each pane shows: [{run, layer, step, caption nodes}] (one pane unless comparing). */
  async sources() {
    const { state, layer } = this;
    const unit = layer.step_unit;
    const main = { run: state.run, layer, step: state.step, caption: [] };
    if (state.compare === "steps") {
      fillSelect(this.compareStep, this.steps.map((step) => [String(step), stepText(unit, step)]), String(state.compareStep));
      return [
        { ...main, step: state.compareStep, caption: [el("span", { text: "Compare with" }), this.compareStep] },
        { ...main, caption: [el("span", { text: `${stepText(unit, state.step)} (slider)` })] },
      ];
    }
    if (state.compare !== "runs") return [main];
    fillSelect(this.compareRun, this.runs.filter((entry) => entry.run !== state.run).map((entry) => [entry.run, entry.run]), state.compareRun);
    main.caption = [el("span", { class: "fm-run-name", text: state.run })];
    const other = { run: state.compareRun, layer: null, step: null, caption: [this.compareRun] };
    const otherLayer = this.runs.find((entry) => entry.run === state.compareRun)?.layers.find((entry) => entry.layer === layer.layer);
    if (!otherLayer || (this.view === "weights" && !otherLayer.weights)) {
      other.missing = `Run ${state.compareRun} has no ${this.view} for layer ${layer.layer}.`;
      return [main, other];
    }
    const { steps } = await this.store.steps(other.run, layer.layer, this.view, version(otherLayer));
    other.layer = otherLayer;
    other.step = steps[nearestIndex(steps, state.step)];
    const same = other.step === state.step && otherLayer.step_unit === unit;
    const note = same ? "" : ` (nearest to ${stepText(unit, state.step)})`;
    other.caption.push(el("span", { text: `${stepText(otherLayer.step_unit, other.step)}${note}` }));
    return [main, other];
  }

  async drawGrids(seq) {
    const { state } = this;
    const kind = this.view;
    const layout = this.layout();
    const count = layout.filters_shown;
    const probe = kind === "weights" ? 0 : state.probe;
    // Dim the shown grid when the next one takes a moment (not cached): it no longer matches the controls.
    const busy = setTimeout(() => seq === this.seq && this.main.classList.add("fm-busy"), 150);
    try {
      const sources = await this.sources();
      const loads = sources.map(async (source) => {
        if (source.missing) return null;
        const spec = frameSpec(source.run, source.layer, kind, source.step, probe);
        const [frame, dead] = await Promise.all([this.store.frame(spec), this.deadAt(source)]);
        return { ...frame, dead };
      });
      const frames = await Promise.all(loads);
      if (seq !== this.seq) return;
      const map = colormap(state.cmap);
      const range = displayRange(frames, this.norm);
      const filters = Array.from({ length: count }, (_, index) => index);
      this.panes.forEach((pane, index) => {
        const source = sources[index];
        pane.root.hidden = !source;
        if (!source) return;
        pane.caption.replaceChildren(...source.caption);
        pane.caption.hidden = !source.caption.length;
        const frame = frames[index];
        if (!frame) return pane.message(source.missing);
        pane.show({
          painted: paintTiles(frame.image, frame.ranges, layout, filters, { map, range }),
          image: frame.image,
          ranges: frame.ranges,
          layout,
          count,
          stats: frame.stats,
          dead: frame.dead,
          selected: state.filter,
          kind,
          step: source.step,
          label: `${count} ${kind === "weights" ? "kernels" : "feature maps"} of ${source.layer.layer} at ${stepText(source.layer.step_unit, source.step)}`,
        });
      });
      const withStats = frames.some((frame) => frame?.stats);
      this.legend.show(map, range, map.diverging && withStats, withStats);
      this.describe(frames[sources.length - 1]);
      this.report("grid", null);
      if (!this.root.dataset.firstGridMs) this.root.dataset.firstGridMs = String(Math.round(performance.now()));
    } catch (error) {
      if (seq !== this.seq) return;
      this.report("grid", new Error(`Couldn't load the grid of ${this.layer.layer} at ${stepText(this.layer.step_unit, state.step)} (${error.message}).`));
      this.panes[0].message("Couldn't load this grid.");
      this.panes[1].root.hidden = true;
    } finally {
      clearTimeout(busy);
      if (seq === this.seq) this.main.classList.remove("fm-busy");
    }
  }

  /** The dead flags (bool[F]) of a pane's step, or null (kernels, no stats, or the activity route failed). */
  async deadAt(source) {
    if (this.view !== "activations" || !source.layer.has_stats) return null;
    try {
      const activity = await this.store.activity(source.run, source.layer.layer, version(source.layer));
      return activity.dead[activity.steps.indexOf(source.step)] || null;
    } catch {
      return null; // the heat strip reports the error
    }
  }

  /** The line above the grid: layer, class, shape, filter count, dead and non-finite filters of the main frame. */
  describe(frame) {
    const { layer } = this;
    const layout = this.layout();
    const parts = [layer.layer, layer.class, `output ${formatShape(layer.output_shape)}`];
    if (this.view === "weights") parts.push(`kernels ${layout.tile_height}×${layout.tile_width}`);
    const shown = layout.filters_shown;
    parts.push(shown < layout.filters_total ? `${shown} of ${layout.filters_total} filters shown` : `${shown} filters`);
    const dead = frame?.dead ? frame.dead.filter(Boolean).length : 0;
    if (dead) parts.push(`${dead} dead`);
    const nonfinite = frame?.stats ? frame.stats.filter((row) => row.nonfinite > 0).length : 0;
    if (nonfinite) parts.push(`${nonfinite} with NaN / Inf`);
    this.summary.textContent = parts.join(" · ");
  }

  async drawHeat(seq) {
    const { layer, state } = this;
    if (!layer.has_stats) return this.heat.message("No activation stats were logged for this layer.");
    try {
      const activity = await this.store.activity(state.run, layer.layer, version(layer));
      if (seq !== this.seq) return;
      this.heat.show({
        activity,
        count: layer.filters_shown,
        stepIndex: activity.steps.indexOf(state.step),
        selected: state.filter,
        map: colormap(state.cmap),
        unit: layer.step_unit,
      });
      this.report("activity", null);
    } catch (error) {
      if (seq !== this.seq) return;
      this.heat.message(`Couldn't load the activity (${error.message}).`);
    }
  }

  /** Updates the detail view shortly after the selection settles (scrubbing would refetch it every step). */
  showDetail() {
    clearTimeout(this.detailTimer);
    const { state } = this;
    if (state.filter == null) return this.detail.hide();
    const ctx = {
      run: state.run,
      layer: this.layer,
      view: this.view,
      steps: this.steps,
      step: state.step,
      probe: state.probe,
      labels: this.labels,
      hasPictures: Boolean(this.run.probes),
      filter: state.filter,
      map: colormap(state.cmap),
      norm: this.norm,
      unit: this.layer.step_unit,
      version: version(this.layer),
    };
    this.detailTimer = setTimeout(() => this.detail.update(ctx), this.playing ? 250 : 40);
  }

  /** Loads the frames around the shown step (and all of a short series) so scrubbing needs no fetch. */
  prefetch(index) {
    const { state, layer } = this;
    const order = [];
    for (let offset = 1; offset <= PREFETCH_AROUND; offset++) order.push(index + offset, index - offset);
    if (this.steps.length <= PREFETCH_ALL) order.push(...this.steps.keys());
    const wanted = [...new Set(order)].filter((position) => position >= 0 && position < this.steps.length);
    const probe = this.view === "weights" ? 0 : state.probe;
    this.store.prefetch(wanted.map((position) => frameSpec(state.run, layer, this.view, this.steps[position], probe)));
  }

  /** Plays from the shown step (from the first when at the end) up to the last; a second call pauses. */
  async togglePlay() {
    this.playing = !this.playing;
    if (!this.playing) return this.update();
    const token = (this.playToken = (this.playToken || 0) + 1);
    const playing = () => this.playing && token === this.playToken;
    let shown = performance.now();
    const atEnd = this.state.step === this.steps[this.steps.length - 1];
    await (atEnd ? this.set({ step: this.steps[0] }) : this.update()); // also shows the pause button
    while (playing()) {
      const frame = Math.min(FRAME_MS[1], Math.max(FRAME_MS[0], PLAY_MS / this.steps.length));
      await sleep(Math.max(0, frame - (performance.now() - shown)));
      const index = this.steps.indexOf(this.state.step);
      if (!playing() || index < 0 || index >= this.steps.length - 1) break;
      shown = performance.now();
      await this.set({ step: this.steps[index + 1] });
    }
    if (!playing()) return;
    this.playing = false;
    this.update();
  }
}
