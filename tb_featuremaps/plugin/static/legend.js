// The colour bar under the grid: what the colours mean for the chosen colormap and normalisation.
import { cssColour } from "./colormaps.js";
import { el, formatNumber, sizeCanvas } from "./dom.js";

export class Legend {
  constructor() {
    this.bar = el("canvas", { class: "fm-legend-bar", "aria-hidden": "true" });
    this.low = el("span");
    this.high = el("span");
    this.swatch = el("span", { class: "fm-swatch" });
    this.dead = el("span", { class: "fm-legend-item" }, el("span", { class: "fm-swatch fm-swatch-dead" }), el("span", { text: "dead filter" }));
    this.root = el(
      "div",
      { class: "fm-legend" },
      this.low,
      this.bar,
      this.high,
      el("span", { class: "fm-legend-item" }, this.swatch, el("span", { text: "NaN / Inf" })),
      this.dead,
    );
  }

  /**
   * `range` is the per-layer {lo, hi}, or null when each filter is scaled to its own min … max;
   * `centred`: diverging maps are centred on zero (only possible with stats); `deadShown`: dead filters are marked.
   */
  show(map, range, centred, deadShown) {
    this.dead.hidden = !deadShown;
    const context = sizeCanvas(this.bar, 160, 10);
    for (let x = 0; x < 160; x++) {
      const index = Math.round((x / 159) * 255) * 3;
      context.fillStyle = cssColour(map.table.subarray(index, index + 3));
      context.fillRect(x, 0, 1, 10);
    }
    this.swatch.style.background = cssColour(map.marker);
    if (range && centred) {
      const magnitude = Math.max(Math.abs(range.lo), Math.abs(range.hi));
      this.low.textContent = formatNumber(-magnitude);
      this.high.textContent = `${formatNumber(magnitude)} (layer)`;
    } else if (range) {
      this.low.textContent = formatNumber(range.lo);
      this.high.textContent = `${formatNumber(range.hi)} (layer)`;
    } else {
      this.low.textContent = centred ? "−|max|" : "min";
      this.high.textContent = `${centred ? "+|max|" : "max"} of each filter`;
    }
  }
}
