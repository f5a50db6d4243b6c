// One layer's step × step similarity map (the similarity route): a canvas heat map of linear CKA between every two
// logged steps (at most 400, evenly spread), viridis from the map's least value to 1; hovering shows both steps and
// the value.
import { colormap } from "./colormaps.js";
import { el, formatNumber, sizeCanvas, stepText } from "./dom.js";
import { ScaleBar } from "./scalebar.js";

const MAX_SIDE = 420; // CSS pixels

export class SimilarityMap {
  constructor() {
    this.data = null;
    this.title = el("h3", { class: "fm-similarity-title" });
    this.canvas = el("canvas", { class: "fm-similarity", role: "img" });
    this.tip = el("div", { class: "fm-tip", hidden: true });
    this.note = el("p", { class: "fm-pane-note", hidden: true });
    this.scale = new ScaleBar();
    this.root = el(
      "figure",
      { class: "fm-similarity-figure" },
      this.title,
      el("div", { class: "fm-similarity-wrap" }, this.canvas, this.tip),
      el("div", { class: "fm-similarity-scale" }, el("span", { text: "linear CKA" }), this.scale.root),
      this.note,
    );
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
  }

  /** `answer`: the similarity route's ({layer, steps, values [S][S], step_count, subsampled}); `unit`: the step unit. */
  show(answer, unit) {
    this.data = { answer, unit };
    this.canvas.hidden = false;
    this.draw();
  }

  message(text) {
    this.data = null;
    this.canvas.hidden = true;
    this.tip.hidden = true;
    this.note.textContent = text;
    this.note.hidden = false;
  }

  draw() {
    if (!this.data) return;
    const { answer, unit } = this.data;
    const count = answer.steps.length;
    const side = Math.max(count, Math.min(MAX_SIDE, Math.max(160, this.root.clientWidth - 2)));
    const cell = side / count;
    this.geometry = { cell, count };
    let lo = 1;
    for (const row of answer.values) for (const value of row) if (Number.isFinite(value) && value < lo) lo = value;
    const map = colormap("viridis");
    const unknown = getComputedStyle(this.root).getPropertyValue("--fm-surface");
    // One pixel per cell, scaled up without smoothing: 400 × 400 cells paint at once.
    const cells = new OffscreenCanvas(count, count);
    const pen = cells.getContext("2d");
    pen.fillStyle = unknown || "#f5f5f5";
    pen.fillRect(0, 0, count, count);
    const pixels = pen.getImageData(0, 0, count, count);
    answer.values.forEach((row, r) =>
      row.forEach((value, c) => {
        if (!Number.isFinite(value)) return;
        const entry = Math.round(Math.min(1, Math.max(0, lo < 1 ? (value - lo) / (1 - lo) : 1)) * 255) * 3;
        pixels.data.set([map.table[entry], map.table[entry + 1], map.table[entry + 2], 255], (r * count + c) * 4);
      }),
    );
    pen.putImageData(pixels, 0, 0);
    sizeCanvas(this.canvas, side, side).drawImage(cells, 0, 0, side, side);
    this.scale.show(map, lo, 1);
    const spread = answer.subsampled ? ` (${count} of its ${answer.step_count} steps, evenly spread)` : "";
    this.title.textContent = `${answer.layer}: similarity between every two ${unit}s${spread}`;
    this.canvas.dataset.steps = String(count);
    this.canvas.setAttribute("aria-label", `Linear CKA of ${answer.layer} between every two of ${count} steps, ${stepText(unit, answer.steps[0])} top left`);
    this.note.hidden = !answer.subsampled;
    this.note.textContent = answer.subsampled ? `Showing ${count} of ${answer.step_count} logged steps, evenly spread (first and last included).` : "";
  }

  /** The cell under a mouse event: {row, col} positions into the answer's steps, or null. */
  cell(event) {
    if (!this.data) return null;
    const box = this.canvas.getBoundingClientRect();
    const { cell, count } = this.geometry;
    const col = Math.floor((event.clientX - box.left) / cell);
    const row = Math.floor((event.clientY - box.top) / cell);
    return row >= 0 && col >= 0 && row < count && col < count ? { row, col } : null;
  }

  hover(event) {
    const at = this.cell(event);
    if (!at) return void (this.tip.hidden = true);
    const { answer, unit } = this.data;
    const value = answer.values[at.row][at.col];
    const [rowStep, colStep] = [answer.steps[at.row], answer.steps[at.col]];
    this.tip.textContent = `${stepText(unit, rowStep)} × ${stepText(unit, colStep)} · CKA ${formatNumber(value)}`;
    Object.assign(this.tip.dataset, { row: String(rowStep), col: String(colStep), value: String(value) });
    this.tip.hidden = false;
    const box = this.canvas.getBoundingClientRect();
    this.tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 200)}px`;
    this.tip.style.top = `${event.clientY - box.top + 14}px`;
  }
}
