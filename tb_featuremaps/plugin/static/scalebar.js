// A colour bar with its numbers: which colour of a colormap stands for which value.
import { el, formatNumber, sizeCanvas } from "./dom.js";

const WIDTH = 160;
const HEIGHT = 10;

export class ScaleBar {
  constructor() {
    this.bar = el("canvas", { class: "fm-scale-bar", "aria-hidden": "true" });
    this.low = el("span", { class: "fm-scale-low" });
    this.mid = el("span", { class: "fm-scale-mid", hidden: true });
    this.high = el("span", { class: "fm-scale-high" });
    this.root = el("span", { class: "fm-scale" }, this.low, el("span", { class: "fm-scale-track" }, this.bar, this.mid), this.high);
  }

  /**
   * Paints `map` left (table entry 0) to right (255). `low` / `high` label the ends (numbers are formatted, text is
   * shown as it is); `mid` labels the centre (the zero of a diverging map), or null for none.
   */
  show(map, low, high, mid = null) {
    const context = sizeCanvas(this.bar, WIDTH, HEIGHT);
    for (let x = 0; x < WIDTH; x++) {
      const index = Math.round((x / (WIDTH - 1)) * 255) * 3;
      context.fillStyle = `rgb(${map.table[index]} ${map.table[index + 1]} ${map.table[index + 2]})`;
      context.fillRect(x, 0, 1, HEIGHT);
    }
    const text = (value) => (typeof value === "number" ? formatNumber(value) : value);
    this.low.textContent = text(low);
    this.high.textContent = text(high);
    this.mid.hidden = mid == null;
    this.mid.textContent = mid == null ? "" : text(mid);
  }
}
