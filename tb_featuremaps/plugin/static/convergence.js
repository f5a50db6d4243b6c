// The "Convergence" view: is each layer still learning? Every layer's similarity (linear CKA) of each step to its
// latest on one chart (ckachart.js), where each settled, and the step × step map of the selected layer
// (similarity.js). Data from the convergence and similarity routes, through the store's answer cache.
import * as api from "./api.js";
import { convergenceChart } from "./ckachart.js";
import { el } from "./dom.js";
import { SimilarityMap } from "./similarity.js";
import { version } from "./store.js";
import { fillSelect } from "./toolbar.js";

const THRESHOLDS = ["0.9", "0.95", "0.99"];

/** Changes when any layer of `run` logs new steps: the key that refetches the run's convergence answers. */
const runVersion = (run) => run.layers.map(version).join(",");

export class ConvergenceView {
  /** `onPick(patch)` changes the selection (the layer whose map is shown); `report(source, error)` shows errors. */
  constructor(store, { onPick, report }) {
    this.store = store;
    this.onPick = onPick;
    this.report = report;
    this.shown = null;
    this.answer = null;
    this.threshold = "0.95";
    this.seq = 0;
    this.summary = el("p", {
      class: "fm-view-summary",
      text:
        "Linear CKA (Kornblith et al. 2019) between each step's responses to the pool and the latest step's, one line per layer: " +
        "a layer has settled from the first step after which it stays at or above the threshold. Click a layer for its map.",
    });
    this.thresholdSelect = el("select", { "aria-label": "Threshold", onchange: () => this.setThreshold(this.thresholdSelect.value) });
    fillSelect(this.thresholdSelect, THRESHOLDS.map((value) => [value, value]), this.threshold);
    this.chart = el("div", { class: "fm-cka-wrap" });
    this.map = new SimilarityMap();
    this.root = el(
      "section",
      { class: "fm-convergence", "aria-label": "Convergence", hidden: true },
      this.summary,
      el("label", { class: "fm-field" }, el("span", { text: "Settled at CKA ≥" }), this.thresholdSelect),
      this.chart,
      this.map.root,
    );
  }

  hide() {
    this.root.hidden = true;
    this.shown = null;
    this.seq++;
  }

  setThreshold(threshold) {
    this.threshold = threshold;
    if (this.shown) this.show(this.shown);
  }

  /** Shows the run of `shown` (selection.js settle()); resolves once the chart is painted. */
  async show(shown) {
    const seq = ++this.seq;
    this.root.hidden = false;
    this.shown = shown;
    const { run } = shown;
    const key = runVersion(run);
    try {
      const answer = await this.store.answer(["convergence", run.run, this.threshold, key], () => api.convergence(run.run, this.threshold));
      if (seq !== this.seq) return false;
      this.answer = answer;
      const painting = performance.now();
      this.drawChart();
      this.report("convergence", null);
      await new Promise((resolve) => requestAnimationFrame(resolve));
      if (seq !== this.seq) return false;
      // The browser clock's account of the chart (benchmarks/convergence_chart.py): its drawing to the next frame, and when it was on screen.
      this.root.dataset.paintMs = String(Math.round(performance.now() - painting));
      this.root.dataset.paintedMs = String(Math.round(performance.now()));
    } catch (error) {
      if (seq !== this.seq) return false;
      this.answer = null;
      this.chart.replaceChildren(el("p", { class: "fm-pane-note", text: `No convergence to show for ${run.run} (${error.message}).` }));
      this.map.message("");
      return false;
    }
    this.drawMap(seq, key);
    return true;
  }

  /** The layer whose map is shown: the selected one if it has responses, else the first that has. */
  mapLayer() {
    const layers = this.answer.layers;
    return (layers.find((entry) => entry.layer === this.shown.state.layer) || layers[0]).layer;
  }

  drawChart() {
    if (!this.answer || !this.shown) return;
    const width = Math.max(320, this.root.clientWidth - 2);
    const { root } = convergenceChart({ answer: this.answer, selected: this.mapLayer(), width, onPick: (layer) => this.onPick({ layer }) });
    this.chart.replaceChildren(root);
  }

  async drawMap(seq, key) {
    const layer = this.mapLayer();
    const unit = this.answer.layers.find((entry) => entry.layer === layer).step_unit;
    try {
      const answer = await this.store.answer(["similarity", this.shown.run.run, layer, key], () => api.similarity(this.shown.run.run, layer));
      if (seq !== this.seq) return;
      this.map.show(answer, unit);
      this.report("similarity", null);
    } catch (error) {
      if (seq === this.seq) this.map.message(`Couldn't load the similarity map of ${layer} (${error.message}).`);
    }
  }

  /** Draws again for a new width or theme. */
  redraw() {
    this.drawChart();
    this.map.draw();
  }
}
