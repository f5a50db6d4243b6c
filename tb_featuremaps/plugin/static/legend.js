// The colour bar under the grid: what the colours mean for the chosen colormap and normalisation.
import { cssColour } from "./colormaps.js";
import { el } from "./dom.js";
import { ScaleBar } from "./scalebar.js";

export class Legend {
  constructor() {
    this.scale = new ScaleBar();
    this.note = el("span", { class: "fm-legend-note" });
    this.swatch = el("span", { class: "fm-swatch" });
    this.dead = el("span", { class: "fm-legend-item" }, el("span", { class: "fm-swatch fm-swatch-dead" }), el("span", { text: "dead filter" }));
    this.root = el(
      "div",
      { class: "fm-legend" },
      this.scale.root,
      this.note,
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
    this.swatch.style.background = cssColour(map.marker);
    if (range && centred) {
      const magnitude = Math.max(Math.abs(range.lo), Math.abs(range.hi));
      this.scale.show(map, -magnitude, magnitude, 0);
    } else if (range) {
      this.scale.show(map, range.lo, range.hi);
    } else {
      this.scale.show(map, centred ? "−|max|" : "min", centred ? "+|max|" : "max", centred ? 0 : null);
    }
    this.note.textContent = range ? "(layer)" : "of each filter";
  }
}
