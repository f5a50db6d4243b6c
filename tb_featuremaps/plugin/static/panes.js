// The grid panes: the shown grid, or two side by side when comparing steps or runs, with their captions, the
// colour legend below and the summary line above. What each pane shows comes from selection.js.
import { colormap } from "./colormaps.js";
import { el, formatShape, reducedText, stepText } from "./dom.js";
import { GridView } from "./grid.js";
import { Legend } from "./legend.js";
import { displayRange, paintTiles } from "./render.js";
import { comparedLayer, frameSpec, hasStats, nearestStep, otherRuns } from "./selection.js";
import { version } from "./store.js";
import { fillSelect } from "./toolbar.js";

export class Panes {
  /** `onPick(patch)` changes the selection (filter, compared step or run); `report(source, error)` shows errors. */
  constructor(store, { onPick, report }) {
    this.store = store;
    this.report = report;
    this.summary = el("p", { class: "fm-summary" });
    this.views = [0, 1].map(() => new GridView((filter) => onPick({ filter })));
    this.compareStep = el("select", { "aria-label": "Step to compare with", onchange: () => onPick({ compareStep: Number(this.compareStep.value) }) });
    this.compareRun = el("select", { "aria-label": "Run to compare with", onchange: () => onPick({ compareRun: this.compareRun.value }) });
    this.legend = new Legend();
    this.root = el("div", { class: "fm-panes" }, ...this.views.map((view) => view.root));
  }

  /** Draws the grids again (new size or theme). */
  redraw() {
    this.views.forEach((view) => view.draw());
  }

  /** Replaces the grids by a message. */
  message(text) {
    this.views[0].message(text);
    this.views[1].root.hidden = true;
  }

  /** What each pane shows: [{run, layer, step, caption nodes, missing?}] (one pane unless comparing). */
  async sources(shown, runs) {
    const { state, layer, kind } = shown;
    const unit = layer.step_unit;
    const main = { run: state.run, layer, step: state.step, caption: [] };
    if (state.compare === "steps") {
      fillSelect(this.compareStep, shown.steps.map((step) => [String(step), stepText(unit, step)]), String(state.compareStep));
      return [
        { ...main, step: state.compareStep, caption: [el("span", { text: "Compare with" }), this.compareStep] },
        { ...main, caption: [el("span", { text: `${stepText(unit, state.step)} (slider)` })] },
      ];
    }
    if (state.compare !== "runs") return [main];
    fillSelect(this.compareRun, otherRuns(runs, state.run).map((entry) => [entry.run, entry.run]), state.compareRun);
    main.caption = [el("span", { class: "fm-run-name", text: state.run })];
    const other = { run: state.compareRun, layer: comparedLayer(runs, shown), step: null, caption: [this.compareRun] };
    if (!other.layer) return [main, { ...other, missing: `Run ${state.compareRun} has no ${kind} for layer ${layer.layer}.` }];
    const { steps } = await this.store.steps(other.run, layer.layer, kind, version(other.layer));
    other.step = nearestStep(steps, state.step);
    const same = other.step === state.step && other.layer.step_unit === unit;
    const note = same ? "" : ` (nearest to ${stepText(unit, state.step)})`;
    other.caption.push(el("span", { text: `${stepText(other.layer.step_unit, other.step)}${note}` }));
    return [main, other];
  }

  /**
   * Draws the panes of `shown` (selection.js settle()); `current()` says whether it is still the one to draw;
   * `arranged`: a promise of the tiles' order and outline colours (selectivity.js arrangement(), the same in both panes), or null.
   */
  async draw(shown, runs, current, arranged = null) {
    const { state, kind, layout } = shown;
    const count = layout.filters_shown;
    // Dim the shown grid when the next one takes a moment (not cached): it no longer matches the controls.
    const busy = setTimeout(() => current() && this.root.classList.add("fm-busy"), 150);
    try {
      const sources = await this.sources(shown, runs);
      const loads = sources.map(async (source) => {
        if (source.missing) return null;
        const spec = frameSpec(source.run, source.layer, kind, source.step, state.probe);
        const [frame, dead] = await Promise.all([this.store.frame(spec), this.deadAt(source, kind)]);
        return { ...frame, dead };
      });
      const [frames, arrangement] = await Promise.all([Promise.all(loads), arranged]);
      if (!current()) return false;
      const map = colormap(state.cmap);
      const range = displayRange(frames, shown.norm);
      const filters = Array.from({ length: count }, (_, index) => index);
      this.views.forEach((view, index) => {
        const source = sources[index];
        view.root.hidden = !source;
        if (!source) return;
        view.caption.replaceChildren(...source.caption);
        view.caption.hidden = !source.caption.length;
        const frame = frames[index];
        if (!frame) return view.message(source.missing);
        view.show({
          painted: paintTiles(frame.image, frame.ranges, layout, filters, { map, range }),
          image: frame.image,
          ranges: frame.ranges,
          layout,
          count,
          stats: frame.stats,
          dead: frame.dead,
          selected: state.filter,
          arranged: arrangement,
          kind,
          step: source.step,
          label: `${count} ${kind === "weights" ? "kernels" : "feature maps"} of ${source.layer.layer} at ${stepText(source.layer.step_unit, source.step)}`,
        });
      });
      const withStats = frames.some((frame) => frame?.stats);
      this.legend.show(map, range, map.diverging && withStats, withStats);
      this.describe(shown, frames[sources.length - 1]);
      this.report("grid", null);
      return true;
    } catch (error) {
      if (!current()) return false;
      const { layer } = shown;
      this.report("grid", new Error(`Couldn't load the grid of ${layer.layer} at ${stepText(layer.step_unit, state.step)} (${error.message}).`));
      this.message("Couldn't load this grid.");
      return false;
    } finally {
      clearTimeout(busy);
      if (current()) this.root.classList.remove("fm-busy");
    }
  }

  /** The dead flags (bool[F]) of a pane's step, or null (kernels, no stats, or the activity route failed). */
  async deadAt(source, kind) {
    if (!hasStats(source.layer, kind)) return null;
    try {
      const activity = await this.store.activity(source.run, source.layer.layer, version(source.layer));
      return activity.dead[activity.steps.indexOf(source.step)] || null;
    } catch {
      return null; // the heat strip reports the error
    }
  }

  /** The line above the grid: layer, class, shape, filter count, dead and non-finite filters of the main frame. */
  describe({ layer, kind, layout }, frame) {
    const parts = [layer.layer, layer.class, `output ${formatShape(layer)}`].filter(Boolean); // a JAX layer has no class
    if (kind === "weights") parts.push(`kernels ${layout.tile_height}×${layout.tile_width}`);
    const shown = layout.filters_shown;
    parts.push(shown < layout.filters_total ? `${shown} of ${layout.filters_total} filters shown` : `${shown} filters`);
    const dead = frame?.dead ? frame.dead.filter(Boolean).length : 0;
    if (dead) parts.push(`${dead} dead`);
    const nonfinite = frame?.stats ? frame.stats.filter((row) => row.nonfinite > 0).length : 0;
    if (nonfinite) parts.push(`${nonfinite} with NaN / Inf`);
    if (reducedText(layout.reduced)) parts.push(reducedText(layout.reduced));
    this.summary.textContent = parts.join(" · ");
  }
}
