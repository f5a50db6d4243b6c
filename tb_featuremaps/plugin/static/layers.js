// The "All layers" view: every logged layer of the run stacked, each its activation grid at the chosen step under a
// heading (name, class, shape), so the network reads top to bottom at a glance. Grids load only near the viewport
// (IntersectionObserver), a few at a time, through the panel's store (its image cache); canvases far off screen are
// emptied again, so a ResNet's 50+ layers scroll smoothly. A click opens that layer's own view.
import { colormap } from "./colormaps.js";
import { el, formatShape, sizeCanvas, stepText } from "./dom.js";
import { fitGrid } from "./layout.js";
import { displayRange, drawTile, paintTiles } from "./render.js";
import { frameSpec, hasStats, nearestStep } from "./selection.js";
import { version } from "./store.js";

const NEAR_PX = 400; // a layer this close to the viewport loads…
const KEEP_PX = 2400; // …and one farther than this gives its canvas back
const CONCURRENT = 3; // layers loading at once (each: its grid and its stats)
const GRID_HEIGHT = 260; // CSS pixels a layer's grid may take (smaller tiles beyond it, never below the layout's least)
const CHROME = 330; // what fitGrid takes off the window height (layout.js)

/** Whether two layer entries log the same steps (the runs route: equal extents mean equal steps). */
const sameSteps = (a, b) => a.step_count === b.step_count && a.first_step === b.first_step && a.last_step === b.last_step;

export class AllLayers {
  /** `onPick(patch)` opens a layer (view and layer); `report(source, error)` shows errors. */
  constructor(store, { onPick, report }) {
    this.store = store;
    this.onPick = onPick;
    this.report = report;
    this.rows = new Map(); // layer name -> row
    this.key = "";
    this.shown = null;
    this.queue = [];
    this.loading = 0;
    this.summary = el("p", { class: "fm-view-summary" });
    this.list = el("div", { class: "fm-layers" });
    this.root = el("section", { class: "fm-all-layers", "aria-label": "All layers", hidden: true }, this.summary, this.list);
    this.near = new IntersectionObserver((entries) => this.seen(entries), { rootMargin: `${NEAR_PX}px 0px` });
    this.far = new IntersectionObserver((entries) => this.left(entries), { rootMargin: `${KEEP_PX}px 0px` });
  }

  hide() {
    this.root.hidden = true;
    this.shown = null;
    this.queue = [];
  }

  /** Shows every layer of `shown`'s run at its step (selection.js settle()); the rows are rebuilt only for other layers. */
  show(shown) {
    this.root.hidden = false;
    this.shown = shown;
    const { run, state } = shown;
    const key = JSON.stringify([run.run, run.layers.map((layer) => layer.layer)]);
    if (key !== this.key) this.build(run, key);
    for (const layer of run.layers) this.rows.get(layer.layer).layer = layer; // new steps: the rows stay, their entries move on
    const count = run.layers.length;
    this.summary.textContent = `${count} layer${count === 1 ? "" : "s"} of ${run.run} at ${stepText(shown.layer.step_unit, state.step)}, in model order · click one to open it`;
    this.layout();
    for (const row of this.rows.values()) {
      row.root.setAttribute("aria-current", String(row.layer.layer === state.layer));
      if (row.near) this.want(row);
    }
    this.pump();
  }

  build(run, key) {
    this.key = key;
    this.near.disconnect();
    this.far.disconnect();
    this.queue = [];
    this.rows = new Map();
    const nodes = run.layers.map((layer) => {
      const canvas = el("canvas", { class: "fm-grid fm-layer-grid", role: "img", "aria-label": `Feature maps of ${layer.layer}` });
      const note = el("span", { class: "fm-layer-note" });
      const count = layer.filters_shown < layer.filters_total ? `${layer.filters_shown} of ${layer.filters_total} filters` : `${layer.filters_shown} filters`;
      const heading = el(
        "h3",
        { class: "fm-layer-title" },
        el("span", { class: "fm-layer-name", text: layer.layer }),
        el("span", { class: "fm-layer-facts", text: [layer.class, formatShape(layer), count].filter(Boolean).join(" · ") }),
        note,
      );
      const open = el("button", { type: "button", class: "fm-layer-open", "aria-label": `Open ${layer.layer}`, title: `Open ${layer.layer}` }, heading, canvas);
      const root = el("article", { class: "fm-layer", "data-layer": layer.layer }, open);
      open.addEventListener("click", () => this.onPick({ layer: layer.layer, view: "activations" }));
      const row = { layer, root, canvas, note, near: false, painted: "", wanted: "", fit: null };
      root.row = row;
      this.rows.set(layer.layer, row);
      return root;
    });
    this.list.replaceChildren(...nodes);
    for (const node of nodes) {
      this.near.observe(node);
      this.far.observe(node);
    }
  }

  /** Sizes every row's canvas box from its layout alone (no data needed), so the page's height is right before anything loads. */
  layout() {
    const width = Math.max(160, this.list.clientWidth - 2);
    for (const row of this.rows.values()) {
      const fit = fitGrid(row.layer.filters_shown, row.layer, width, CHROME + GRID_HEIGHT);
      if (row.fit && row.fit.width === fit.width && row.fit.height === fit.height) continue;
      row.fit = fit;
      row.canvas.style.width = `${fit.width}px`;
      row.canvas.style.height = `${fit.height}px`;
      row.painted = ""; // drawn for another size
    }
  }

  /** Draws again for a new width or theme. */
  redraw() {
    if (!this.shown) return;
    this.layout();
    for (const row of this.rows.values()) if (row.near) this.want(row);
    this.pump();
  }

  seen(entries) {
    for (const entry of entries) {
      const row = entry.target.row;
      row.near = entry.isIntersecting;
      if (row.near && this.shown) this.want(row);
    }
    this.pump();
  }

  left(entries) {
    for (const entry of entries) {
      if (entry.isIntersecting) continue;
      const row = entry.target.row;
      row.canvas.width = 0; // gives the pixels back; the image stays in the store's cache
      row.canvas.height = 0;
      row.painted = "";
      delete row.canvas.dataset.step;
    }
  }

  /** What a row should show now: the selection's step (else the nearest earlier), probe, colours and scale. */
  target(row) {
    const { state } = this.shown;
    const norm = !hasStats(row.layer, "activations") ? "filter" : row.layer.normalization === "per_layer" ? "layer" : state.norm;
    return { run: state.run, step: state.step, probe: state.probe, cmap: state.cmap, norm };
  }

  want(row) {
    const key = JSON.stringify(this.target(row));
    if (row.painted === key || row.wanted === key) return;
    row.wanted = key;
    if (!this.queue.includes(row)) this.queue.push(row);
  }

  /** Loads queued rows still near the viewport, at most CONCURRENT at once, in page order. */
  pump() {
    while (this.loading < CONCURRENT && this.queue.length) {
      const row = this.queue.shift();
      if (!row.near || !row.wanted || row.painted === row.wanted) continue;
      this.loading++;
      this.paint(row, row.wanted).finally(() => {
        this.loading--;
        this.pump();
      });
    }
  }

  async paint(row, key) {
    const { run, step, probe, cmap, norm } = JSON.parse(key);
    const { layer } = row;
    const selected = this.shown.layer;
    try {
      const steps = sameSteps(layer, selected) ? this.shown.steps : (await this.store.steps(run, layer.layer, "activations", version(layer))).steps;
      if (!steps.length) {
        row.note.textContent = "no steps logged yet";
        return;
      }
      const shownStep = nearestStep(steps, step);
      const frame = await this.store.frame(frameSpec(run, layer, "activations", shownStep, probe));
      if (row.wanted !== key || !this.shown) return;
      const map = colormap(cmap);
      const filters = Array.from({ length: layer.filters_shown }, (_, index) => index);
      const painted = paintTiles(frame.image, frame.ranges, layer, filters, { map, range: displayRange([frame], norm) });
      const fit = row.fit;
      const context = sizeCanvas(row.canvas, fit.width, fit.height);
      for (const filter of filters) {
        const col = filter % fit.columns;
        const line = Math.floor(filter / fit.columns);
        drawTile(context, painted, layer, filter, fit.gap + col * (fit.cell.width + fit.gap), fit.gap + line * (fit.cell.height + fit.gap), fit.cell.width, fit.cell.height);
      }
      row.painted = key;
      row.canvas.dataset.step = String(shownStep);
      const unit = layer.step_unit;
      row.note.textContent =
        shownStep === step
          ? ""
          : shownStep < step
            ? `shows ${stepText(unit, shownStep)}, the nearest earlier step (not logged at ${stepText(unit, step)})`
            : `shows ${stepText(unit, shownStep)}, its first logged step`;
      this.report("layers", null);
    } catch (error) {
      if (row.wanted !== key) return;
      row.note.textContent = `couldn't load (${error.message})`;
      this.report("layers", new Error(`Couldn't load the grid of ${layer.layer} (${error.message}).`));
    } finally {
      if (row.wanted === key) row.wanted = ""; // painted, or failed: a later look at the row asks again
    }
  }
}
