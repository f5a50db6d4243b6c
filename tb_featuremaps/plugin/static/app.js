// The panel's controller: polls the runs, keeps the selection (its rules: selection.js) and wires the parts to it.
import * as api from "./api.js";
import { colormap } from "./colormaps.js";
import { ConvergenceView } from "./convergence.js";
import { Detail } from "./detail.js";
import { el, stepText } from "./dom.js";
import { emptyState } from "./empty.js";
import { HeatStrip } from "./heatstrip.js";
import { AllLayers } from "./layers.js";
import { LooksFor } from "./looks.js";
import { Notice } from "./notice.js";
import { Panes } from "./panes.js";
import { ProbePicker } from "./probes.js";
import { change, frameSpec, hasStats, layoutOf, nextStep, playStart, probeMatters, resolve, settle } from "./selection.js";
import { arrangement, SelectivityControl, selectivityOffered } from "./selectivity.js";
import { readHash, writeHash } from "./state.js";
import { StepBar } from "./stepbar.js";
import { Store, version } from "./store.js";
import { followTheme } from "./theme.js";
import { press, segment, segmented, Toolbar } from "./toolbar.js";

const POLL_MS = 3000;
const PLAY_MS = 8000; // playback runs through all steps in about this long…
const FRAME_MIN_MS = 80; // …showing each step at least
const FRAME_MAX_MS = 400; // …and at most this long
const PREFETCH_AROUND = 8;
const PREFETCH_ALL = 64; // prefetch every step of layers with at most this many

/** A change value as the route's JSON carries it: a number, or "NaN" / "Infinity" (a dead filter that came alive) as text. */
const changeValue = (value) => (typeof value === "string" ? Number(value) : value);
const isKnown = (value) => typeof value === "number" && !Number.isNaN(value);

/**
 * Each filter's change per step, [S][F]: the first known (+Infinity included) of the fields the change kind's `measure` names
 * (the runs listing's `kinds.change`: its response's change, else its kernel's; format/kinds/change.py).
 */
function changeMeasure({ fields, values }, { measure }) {
  const positions = measure.map((name) => fields.indexOf(name)).filter((position) => position >= 0);
  return values.map((filters) => filters.map((row) => positions.map((position) => changeValue(row[position])).find(isKnown) ?? NaN));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function startApp(root) {
  const app = new App(root);
  followTheme(() => app.redraw()); // canvases take their colours from the theme when drawn
  app.poll();
}

class App {
  constructor(root) {
    this.root = root;
    this.store = new Store();
    this.state = readHash(); // what the user chose
    this.shown = null; // what is drawn: the selection settled on the runs and the layer's steps (selection.js)
    this.runs = null; // from the runs route, only runs with layers
    this.kinds = null; // from the runs route: each series kind's fields and rules (format/kinds/)
    this.runsKey = "";
    this.seq = 0;
    this.playing = false;
    this.errors = new Map(); // source -> message
    this.selected = ""; // the run, layer and view the errors shown were met on
    this.build();
  }

  /** The shown layer's steps. */
  get steps() {
    return this.shown ? this.shown.steps : [];
  }

  build() {
    const set = (patch) => this.set(patch);
    this.message = el("p", { class: "fm-message", role: "alert", hidden: true });
    this.notice = new Notice();
    this.loading = el("p", { class: "fm-loading", text: "Loading feature maps…" });
    this.empty = emptyState();
    this.empty.hidden = true;
    this.toolbar = new Toolbar(set);
    this.probes = new ProbePicker((probe) => this.set({ probe }));
    this.stepbar = new StepBar({
      onStep: (index) => this.set({ step: this.steps[index] }),
      onPlay: () => this.togglePlay(),
      onFollow: (follow) => this.set({ follow }),
    });
    this.panes = new Panes(this.store, { onPick: set, report: (source, error) => this.report(source, error) });
    this.heat = new HeatStrip((filter, step) => this.set({ filter, step }));
    this.detail = new Detail(this.store, { onPick: set, onClose: () => this.set({ filter: null }) });
    this.layers = new AllLayers(this.store, { onPick: set, report: (source, error) => this.report(source, error) });
    this.convergence = new ConvergenceView(this.store, { onPick: set, report: (source, error) => this.report(source, error) });
    this.selectivity = new SelectivityControl(set);
    this.looks = [0, 1].map(() => new LooksFor((filter) => this.set({ filter }))); // two when comparing steps or runs
    this.looksRoot = el("div", { class: "fm-panes", hidden: true }, ...this.looks.map((view) => view.root));
    this.heatTitle = el("h2");
    this.heatMode = segmented("Heat strip", [["mean", "Mean activation"], ["change", "Still changing"]], (heat) => this.set({ heat }));
    this.changing = el("p", { class: "fm-changing", hidden: true });
    this.activity = el(
      "section",
      { class: "fm-activity" },
      el("div", { class: "fm-activity-head" }, this.heatTitle, this.heatMode.root),
      this.changing,
      this.heat.root,
    );
    this.filters = el("div", { class: "fm-filters" }, this.panes.summary, this.selectivity.root, this.panes.root, this.panes.legend.root, this.looksRoot, this.activity);
    this.main = el("section", { class: "fm-main", "aria-label": "Filters" }, this.filters, this.layers.root, this.convergence.root);
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
    this.panes.redraw();
    this.heat.draw();
    this.layers.redraw();
    if (this.shown?.convergence) this.convergence.redraw();
    this.looks.forEach((view) => view.draw());
  }

  /** Shows (or clears, with null) the error of one source; several sources can fail at once. */
  report(source, error) {
    if (error) this.errors.set(source, error.message || String(error));
    else this.errors.delete(source);
    this.message.textContent = [...this.errors.values()].join(" · ");
    this.message.hidden = this.errors.size === 0;
  }

  /** A new run, layer or view (`selected`): the errors met on the one before no longer apply (the runs' listing's still do). */
  forget(selected) {
    if (selected === this.selected) return;
    this.selected = selected;
    for (const source of [...this.errors.keys()]) if (source !== "runs") this.report(source, null);
  }

  /** Fetches the runs now and every few seconds (while the page is visible); redraws when anything changed. */
  async poll() {
    if (document.hidden && this.runs) return setTimeout(() => this.poll(), POLL_MS);
    try {
      const { runs, errors, kinds } = await api.runs();
      this.kinds = kinds;
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
    this.state = change(this.state, patch, this.steps);
    return this.update();
  }

  /** Settles the selection on the current runs and the layer's steps, then redraws every part. */
  async update() {
    const seq = ++this.seq;
    if (!this.runs) return;
    this.empty.hidden = this.runs.length > 0;
    this.shell.hidden = !this.runs.length;
    if (!this.runs.length) return;
    const resolved = resolve(this.state, this.runs);
    this.state = resolved.state;
    const { run, layer, kind } = resolved;
    this.forget(JSON.stringify([run.run, layer.layer, kind]));
    let answer;
    try {
      answer = await this.store.steps(run.run, layer.layer, kind, version(layer));
      this.report("steps", null);
    } catch (error) {
      if (seq === this.seq) this.report("steps", new Error(`Couldn't list the steps of ${layer.layer} (${error.message}).`));
      return;
    }
    if (seq !== this.seq) return;
    if (!answer.steps.length) return this.panes.message(`No steps logged for ${layer.layer} yet.`);
    const shown = settle(resolved, answer.steps, this.runs);
    const { state, index } = shown;
    this.shown = shown;
    this.state = state;
    writeHash(state);

    this.toolbar.update(this.runs, shown);
    this.probes.update(run.run, run.probes, layer.probe_labels, state.probe, !probeMatters(kind));
    this.stepbar.update({ steps: shown.steps, index, unit: layer.step_unit, playing: this.playing, follow: state.follow, wallTime: answer.wall_times[index] });
    this.filters.hidden = shown.all || shown.convergence;
    if (shown.convergence) {
      this.detail.hide();
      this.layers.hide();
      return this.convergence.show(shown);
    }
    this.convergence.hide();
    if (shown.all) {
      this.detail.hide();
      return this.layers.show(shown);
    }
    this.layers.hide();
    const looks = kind === "strongest";
    for (const part of [this.panes.summary, this.panes.root, this.panes.legend.root]) part.hidden = looks;
    this.looksRoot.hidden = !looks;
    const sorted = kind === "activations" && selectivityOffered(run, layer);
    const arranged = sorted ? arrangement(this.store, run, layer, state.step, state.sort).catch(() => null) : null; // the grid shows without it
    Promise.resolve(arranged).then((value) => seq === this.seq && this.selectivity.update(value != null, state.sort)); // labels that are not classes: none
    const drawn = looks ? this.drawLooks(seq, shown) : this.panes.draw(shown, this.runs, () => seq === this.seq, arranged);
    this.drawHeat(seq, shown);
    this.showDetail(shown);
    this.prefetch(shown);
    if ((await drawn) && !this.root.dataset.firstGridMs) this.root.dataset.firstGridMs = String(Math.round(performance.now()));
  }

  /**
   * The "Looks for" view: the step's patch sheet at once from the cache, the pool inputs' labels when they are in; two
   * sheets side by side when comparing steps or runs (the same sources as the grid panes).
   */
  async drawLooks(seq, shown) {
    const { state, layer } = shown;
    const current = () => seq === this.seq;
    try {
      const sources = await this.panes.sources(shown, this.runs);
      const frames = await Promise.all(
        sources.map((source) => (source.missing ? null : this.store.frame(frameSpec(source.run, source.layer, "strongest", source.step, 0)))),
      );
      if (!current()) return false;
      this.looks.forEach((view, index) => {
        const source = sources[index];
        view.root.hidden = !source;
        if (!source) return;
        view.caption.replaceChildren(...source.caption);
        view.caption.hidden = sources.length < 2;
        if (!frames[index]) return view.message(source.missing);
        const layout = layoutOf(source.layer, "strongest");
        view.show({ image: frames[index].image, layout, layer: source.layer, step: source.step, selected: state.filter, topk: null });
        this.store.topk(source.run, source.layer.layer, source.step).then(
          (answer) => {
            if (!current()) return;
            view.labels(source.step, answer);
            this.report("topk", null);
          },
          (error) => current() && this.report("topk", new Error(`Couldn't load which pool inputs ${layer.layer}'s patches are (${error.message}).`)),
        );
      });
      this.report("grid", null);
      return true;
    } catch (error) {
      if (!current()) return false;
      this.report("grid", new Error(`Couldn't load the strongest inputs of ${layer.layer} at ${stepText(layer.step_unit, state.step)} (${error.message}).`));
      this.looks[0].message("Couldn't load the strongest inputs.");
      this.looks[1].root.hidden = true;
      return false;
    }
  }

  /** The heat strip (mean activation, or change since the previous step) and the "still changing" line. */
  async drawHeat(seq, { layer, state }) {
    const mode = state.heat === "change" && layer.has_change ? "change" : "mean";
    press(this.heatMode.buttons, mode);
    const changeButton = segment(this.heatMode.buttons, "change");
    changeButton.disabled = !layer.has_change;
    changeButton.title = layer.has_change ? "Each filter's change since the previous step (its response to the pool, else its kernel)" : "No change was logged for this layer";
    this.heatTitle.textContent = mode === "change" ? "Change per filter since the previous step" : "Mean activation per filter over steps";
    this.describeChange(seq, layer, state);
    const base = { count: layer.filters_shown, selected: state.filter, map: colormap(state.cmap), unit: layer.step_unit };
    try {
      if (mode === "change") {
        const answer = await this.store.change(state.run, layer.layer, version(layer));
        if (seq !== this.seq) return;
        const activity = { steps: answer.steps, mean: changeMeasure(answer, this.kinds.change), dead: null };
        this.heat.show({ ...base, activity, stepIndex: answer.steps.indexOf(state.step), legend: "change (relative)", quantity: "change" });
      } else {
        if (!hasStats(layer, "activations")) return this.heat.message("No activation stats were logged for this layer.");
        const activity = await this.store.activity(state.run, layer.layer, version(layer));
        if (seq !== this.seq) return;
        this.heat.show({ ...base, activity, stepIndex: activity.steps.indexOf(state.step), legend: "mean activation", quantity: "mean" });
      }
      this.report("activity", null);
    } catch (error) {
      if (seq !== this.seq) return;
      this.heat.message(`Couldn't load the ${mode === "change" ? "change" : "activity"} (${error.message}).`);
    }
  }

  /** "N of F filters still changing at step S" (metadata.CHANGING_THRESHOLD, from the change route), when it is known. */
  async describeChange(seq, layer, state) {
    if (!layer.has_change) return (this.changing.hidden = true);
    try {
      const answer = await this.store.change(state.run, layer.layer, version(layer));
      if (seq !== this.seq) return;
      const index = answer.steps.indexOf(state.step);
      const measures = changeMeasure(answer, this.kinds.change);
      const everKnown = answer.changing.some((fraction) => fraction != null);
      const known = index < 0 ? [] : measures[index].filter(isKnown);
      const unit = layer.step_unit;
      const threshold = `${Math.round(answer.threshold * 100)} %`;
      this.changing.hidden = !everKnown;
      this.changing.textContent = known.length
        ? `${known.filter((value) => value > answer.threshold).length} of ${known.length} filters still changing at ${stepText(unit, state.step)} (more than ${threshold} since the previous step)`
        : `Not known at ${stepText(unit, state.step)} whether filters still change (the first logged step has nothing to compare with).`;
    } catch {
      if (seq === this.seq) this.changing.hidden = true; // the heat strip reports the error in change mode
    }
  }

  /** Updates the detail view shortly after the selection settles (scrubbing would refetch it every step). */
  showDetail(shown) {
    clearTimeout(this.detailTimer);
    if (shown.state.filter == null) return this.detail.hide();
    this.detailTimer = setTimeout(() => this.detail.update(shown), this.playing ? 250 : 40);
  }

  /** Loads the frames around the shown step (and all of a short series) so scrubbing needs no fetch. */
  prefetch({ state, layer, kind, steps, index }) {
    const order = [];
    for (let offset = 1; offset <= PREFETCH_AROUND; offset++) order.push(index + offset, index - offset);
    if (steps.length <= PREFETCH_ALL) order.push(...steps.keys());
    const wanted = [...new Set(order)].filter((position) => position >= 0 && position < steps.length);
    this.store.prefetch(wanted.map((position) => frameSpec(state.run, layer, kind, steps[position], state.probe)));
  }

  /** Plays from the shown step (from the first when at the end) up to the last; a second call pauses. */
  async togglePlay() {
    this.playing = !this.playing;
    if (!this.playing) return this.update();
    const token = (this.playToken = (this.playToken || 0) + 1);
    const playing = () => this.playing && token === this.playToken;
    let shown = performance.now();
    const start = playStart(this.steps, this.state.step);
    await (start !== this.state.step ? this.set({ step: start }) : this.update()); // also shows the pause button
    while (playing()) {
      const frame = Math.min(FRAME_MAX_MS, Math.max(FRAME_MIN_MS, PLAY_MS / this.steps.length));
      await sleep(Math.max(0, frame - (performance.now() - shown)));
      const next = nextStep(this.steps, this.state.step);
      if (!playing() || next == null) break;
      shown = performance.now();
      await this.set({ step: next });
    }
    if (!playing()) return;
    this.playing = false;
    this.update();
  }
}
