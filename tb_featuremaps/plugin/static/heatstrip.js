// Filters × steps heat strip of mean activation (activity route) or of change since the previous step (change route),
// with its colour scale; dead cells striped.
import { tableColour } from "./colormaps.js";
import { el, formatNumber, sizeCanvas, stepText, unitPlural } from "./dom.js";
import { ScaleBar } from "./scalebar.js";

const MAX_HEIGHT = 200;

/** Red-on-white diagonal stripes: dead cells stand out from every colormap. */
function deadPattern(context, colour) {
  const tile = new OffscreenCanvas(6, 6);
  const pen = tile.getContext("2d");
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, 6, 6);
  pen.strokeStyle = colour;
  pen.lineWidth = 2;
  pen.beginPath();
  for (const offset of [-6, 0, 6]) {
    pen.moveTo(offset - 1, 7);
    pen.lineTo(offset + 7, -1);
  }
  pen.stroke();
  return context.createPattern(tile, "repeat");
}

export class HeatStrip {
  /** `onPick(filter, step)` is called when a cell is clicked. */
  constructor(onPick) {
    this.onPick = onPick;
    this.data = null;
    this.canvas = el("canvas", { class: "fm-heat", role: "img" });
    this.tip = el("div", { class: "fm-tip", hidden: true });
    this.note = el("p", { class: "fm-pane-note", hidden: true });
    this.axis = el("div", { class: "fm-heat-axis" });
    this.scale = new ScaleBar();
    this.legendText = el("span", { text: "mean activation" });
    this.legend = el("div", { class: "fm-heat-scale" }, this.legendText, this.scale.root);
    this.root = el("div", { class: "fm-heat-wrap" }, this.canvas, this.tip, this.axis, this.legend, this.note);
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.canvas.addEventListener("click", (event) => {
      const cell = this.cell(event);
      if (cell) this.onPick(cell.filter, this.data.activity.steps[cell.stepIndex]);
    });
  }

  /**
   * `data`: {activity ({steps, mean: [S][F] values, dead: [S][F] or null}), count (filters drawn), stepIndex, selected,
   * map, unit, quantity ("mean" or "change": what the values are), legend (the scale's title)}.
   */
  show(data) {
    this.data = data;
    this.note.hidden = true;
    this.canvas.hidden = false;
    this.legend.hidden = false;
    this.draw();
  }

  message(text) {
    this.data = null;
    this.canvas.hidden = true;
    this.legend.hidden = true;
    this.note.textContent = text;
    this.note.hidden = false;
  }

  draw() {
    if (!this.data) return;
    const { activity, count, stepIndex, selected, map, unit, quantity = "mean", legend = "mean activation" } = this.data;
    this.legendText.textContent = legend;
    this.canvas.dataset.quantity = quantity;
    const steps = activity.steps.length;
    const width = Math.max(160, this.root.clientWidth - 2);
    const rowHeight = Math.max(2, Math.min(9, Math.floor(MAX_HEIGHT / count)));
    const context = sizeCanvas(this.canvas, width, count * rowHeight);
    // More steps than pixels: each column averages the steps that fall into it (and says so).
    const columns = Math.min(steps, width);
    this.geometry = { width, rowHeight, steps, columns };
    this.canvas.dataset.steps = String(steps);
    this.canvas.dataset.columns = String(columns);
    const what = quantity === "change" ? "Change since the previous step" : "Mean activation";
    this.canvas.setAttribute("aria-label", `${what} of ${count} filters over ${steps} steps; click a cell to open that filter at that step.`);
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of activity.mean) {
      for (const value of row.slice(0, count)) {
        if (Number.isFinite(value)) [lo, hi] = [Math.min(lo, value), Math.max(hi, value)];
      }
    }
    const magnitude = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    // Changes span decades (the first interval moves a filter far more than the fortieth): a log scale, at most 4 decades.
    const logScale = quantity === "change" && hi > 0;
    if (logScale) lo = Math.max(lo, hi * 1e-4, Number.MIN_VALUE);
    const scale = (value) => {
      if (logScale) return value > 0 && hi > lo ? Math.log(value / lo) / Math.log(hi / lo) : 0;
      if (map.diverging) return 0.5 + value / (2 * magnitude);
      return hi > lo ? (value - lo) / (hi - lo) : 0;
    };
    this.canvas.dataset.scale = logScale ? "log" : "linear";
    if (lo > hi) this.scale.show(map, "–", "–");
    else if (logScale) this.scale.show(map, lo, hi, "log scale");
    else if (map.diverging && quantity !== "change") this.scale.show(map, -magnitude, magnitude, 0);
    else this.scale.show(map, lo, hi);
    const style = getComputedStyle(this.root);
    const dead = deadPattern(context, style.getPropertyValue("--fm-dead"));
    // A change not known (a run's first step) is not a NaN of the model's: the panel's surface colour, not the NaN marker.
    const unknown = quantity === "change" ? style.getPropertyValue("--fm-surface") : `rgb(${map.marker.join(" ")})`;
    for (let c = 0; c < columns; c++) {
      const x0 = Math.floor((c * width) / columns);
      const x1 = Math.floor(((c + 1) * width) / columns);
      for (let f = 0; f < count; f++) {
        const { value, allDead } = this.columnValue(c, f);
        context.fillStyle = allDead
          ? dead
          : Number.isFinite(value)
            ? tableColour(map, Math.round(Math.min(1, Math.max(0, scale(value))) * 255))
            : unknown;
        context.fillRect(x0, f * rowHeight, Math.max(1, x1 - x0), rowHeight);
      }
    }
    context.strokeStyle = style.getPropertyValue("--fm-accent");
    context.lineWidth = 2;
    if (stepIndex != null) {
      const column = Math.min(columns - 1, Math.floor((stepIndex * columns) / steps));
      const x0 = Math.floor((column * width) / columns);
      const x1 = Math.floor(((column + 1) * width) / columns);
      context.strokeRect(x0 + 1, 1, Math.max(1, x1 - x0 - 2), count * rowHeight - 2);
    }
    if (selected != null && selected < count) context.strokeRect(1, selected * rowHeight + 1, width - 2, rowHeight - 2);
    this.axis.replaceChildren(
      el("span", { text: stepText(unit, activity.steps[0]) }),
      el("span", {
        text:
          `filters 0–${count - 1} ↓, ${unitPlural(unit)} →` +
          (columns < steps ? ` (each column averages about ${Math.round(steps / columns)} ${unitPlural(unit)})` : ""),
      }),
      el("span", { text: stepText(unit, activity.steps[steps - 1]) }),
    );
  }

  /** The step positions [first, end) that column `c` covers. */
  columnSteps(c) {
    const { steps, columns } = this.geometry;
    return [Math.floor((c * steps) / columns), Math.max(Math.floor((c * steps) / columns) + 1, Math.floor(((c + 1) * steps) / columns))];
  }

  /** Mean of the finite means of filter `f` over column `c`'s steps; dead when every step is. */
  columnValue(c, f) {
    const { activity } = this.data;
    const [first, end] = this.columnSteps(c);
    let sum = 0;
    let finite = 0;
    let deadSteps = 0;
    for (let s = first; s < end; s++) {
      const value = activity.mean[s][f];
      if (Number.isFinite(value)) [sum, finite] = [sum + value, finite + 1];
      if (activity.dead?.[s]?.[f]) deadSteps++;
    }
    return { value: finite ? sum / finite : NaN, allDead: deadSteps === end - first };
  }

  cell(event) {
    if (!this.data) return null;
    const box = this.canvas.getBoundingClientRect();
    const { width, rowHeight, columns } = this.geometry;
    const column = Math.floor(((event.clientX - box.left) / width) * columns);
    const filter = Math.floor((event.clientY - box.top) / rowHeight);
    if (column < 0 || column >= columns || filter < 0 || filter >= this.data.count) return null;
    const [stepIndex, end] = this.columnSteps(column);
    return { filter, stepIndex, column, end };
  }

  hover(event) {
    const cell = this.cell(event);
    if (!cell) {
      this.tip.hidden = true;
      return;
    }
    const { activity, unit } = this.data;
    const { value, allDead } = this.columnValue(cell.column, cell.filter);
    const dead = allDead ? " · dead" : "";
    const last = activity.steps[cell.end - 1];
    const where = cell.end - cell.stepIndex > 1 ? `${stepText(unit, activity.steps[cell.stepIndex])}–${last} (averaged)` : stepText(unit, last);
    this.tip.textContent = `filter ${cell.filter} · ${where} · ${this.data.quantity || "mean"} ${formatNumber(value)}${dead}`;
    this.tip.hidden = false;
    const box = this.canvas.getBoundingClientRect();
    this.tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 220)}px`;
    this.tip.style.top = `${event.clientY - box.top + 14}px`;
  }
}
