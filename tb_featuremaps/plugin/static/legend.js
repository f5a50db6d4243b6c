// The colour bar under the grid: what the colours mean for the chosen colormap and normalisation.
import { cssColour } from "./colormaps.js";
import { el, formatNumber, sizeCanvas } from "./dom.js";

export class Legend {
  constructor() {
    this.bar = el("canvas", { class: "fm-legend-bar", "aria-hidden": "true" });
    this.low = el("span");
    this.high = el("span");
    this.swatch = el("span", { class: "fm-swatch" });
    this.root = el(
      "div",
      { class: "fm-legend" },
      this.low,
      this.bar,
      this.high,
      el("span", { class: "fm-legend-nan" }, this.swatch, el("span", { text: "NaN / Inf" })),
    );
  }

  /** `range` is the per-layer {lo, hi} or null when each filter is scaled to its own min … max. */
  show(map, range) {
    const context = sizeCanvas(this.bar, 160, 10);
    for (let x = 0; x < 160; x++) {
      const index = Math.round((x / 159) * 255) * 3;
      context.fillStyle = cssColour(map.table.subarray(index, index + 3));
      context.fillRect(x, 0, 1, 10);
    }
    this.swatch.style.background = cssColour(map.marker);
    if (range && map.diverging) {
      const magnitude = Math.max(Math.abs(range.lo), Math.abs(range.hi));
      this.low.textContent = formatNumber(-magnitude);
      this.high.textContent = `${formatNumber(magnitude)} (layer)`;
    } else if (range) {
      this.low.textContent = formatNumber(range.lo);
      this.high.textContent = `${formatNumber(range.hi)} (layer)`;
    } else {
      this.low.textContent = map.diverging ? "−|max|" : "min";
      this.high.textContent = `${map.diverging ? "+|max|" : "max"} of each filter`;
    }
  }
}
