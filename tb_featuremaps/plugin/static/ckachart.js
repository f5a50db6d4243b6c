// The all-layers convergence chart (inline SVG): each layer's similarity (linear CKA) of every step to its latest
// step, one line per layer, coloured in model order, the threshold as a dashed line, and a legend in layer order that
// says where each layer settled. A click on a line or its legend entry picks that layer.
import { colormap, tableColour } from "./colormaps.js";
import { el, formatNumber, stepText, svg } from "./dom.js";

const PAD = { left: 40, right: 12, top: 10, bottom: 24 };
const HEIGHT = 300;

/** The colour of layer `position` of `count`: evenly along viridis, bottom layers dark, top layers light. */
export const layerColour = (position, count) => tableColour(colormap("viridis"), Math.round((position / Math.max(1, count - 1)) * 220));

/** "settled at epoch S", or why not, for one layer of the convergence answer. */
export function settledText(layer) {
  return layer.settled == null ? "not settled" : `settled at ${stepText(layer.step_unit, layer.settled)}`;
}

/**
 * `answer`: the convergence route's ({threshold, layers: [{layer, step_unit, steps, cka, settled}]}), layers in model
 * order; `selected`: the layer whose map is shown; `width`: CSS pixels; `onPick(layer)` opens a layer's map.
 * Returns {root (the figure), chart (the SVG)}.
 */
export function convergenceChart({ answer, selected, width, onPick }) {
  const layers = answer.layers;
  const first = Math.min(...layers.map((layer) => layer.steps[0]));
  const last = Math.max(first + 1, ...layers.map((layer) => layer.steps[layer.steps.length - 1]));
  let lo = answer.threshold;
  for (const layer of layers) for (const value of layer.cka) if (Number.isFinite(value) && value < lo) lo = value;
  lo = Math.max(0, Math.floor(lo * 10) / 10); // the axis starts at a tenth below the least value (CKA lies in [0, 1])
  const plotWidth = width - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (step) => PAD.left + ((step - first) / (last - first)) * plotWidth;
  const y = (value) => PAD.top + ((1 - value) / (1 - lo || 1)) * plotHeight;
  const unit = layers[0]?.step_unit ?? "step";
  const label = `Linear CKA of each step to the latest, ${layers.length} layers`;
  const chart = svg("svg", { class: "fm-chart fm-cka-chart", viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, role: "img", "aria-label": label });
  chart.dataset.layers = String(layers.length);
  chart.append(
    svg("title", { text: label }),
    svg("rect", { class: "fm-chart-frame", x: PAD.left, y: PAD.top, width: plotWidth, height: plotHeight }),
    svg("text", { class: "fm-chart-tick", x: PAD.left - 4, y: PAD.top + 4, "text-anchor": "end", text: "1" }),
    svg("text", { class: "fm-chart-tick", x: PAD.left - 4, y: PAD.top + plotHeight, "text-anchor": "end", text: formatNumber(lo) }),
    svg("text", { class: "fm-chart-tick", x: PAD.left, y: HEIGHT - 6, text: stepText(unit, first) }),
    svg("text", { class: "fm-chart-tick", x: PAD.left + plotWidth, y: HEIGHT - 6, "text-anchor": "end", text: stepText(unit, last) }),
    svg("line", { class: "fm-cka-threshold", x1: PAD.left, x2: PAD.left + plotWidth, y1: y(answer.threshold), y2: y(answer.threshold) }),
  );
  const items = layers.map((layer, position) => {
    const colour = layerColour(position, layers.length);
    let path = "";
    let pen = "M";
    layer.cka.forEach((value, index) => {
      if (!Number.isFinite(value)) return void (pen = "M");
      path += `${pen}${x(layer.steps[index]).toFixed(1)},${y(Math.max(lo, value)).toFixed(1)}`;
      pen = "L";
    });
    const line = svg("path", { class: "fm-cka-line", d: path || "M0,0", stroke: colour, "data-layer": layer.layer });
    line.toggleAttribute("data-selected", layer.layer === selected);
    line.append(svg("title", { text: `${layer.layer} · ${settledText(layer)}` }));
    line.addEventListener("click", () => onPick(layer.layer));
    chart.append(line);
    if (layer.settled != null) {
      chart.append(svg("circle", { class: "fm-cka-settled", cx: x(layer.settled), cy: y(answer.threshold), r: 3, fill: colour }));
    }
    const swatch = el("span", { class: "fm-cka-swatch", style: `background: ${colour}` });
    return el(
      "li",
      {},
      el(
        "button",
        { type: "button", class: "fm-cka-item", "data-layer": layer.layer, "aria-pressed": String(layer.layer === selected), onclick: () => onPick(layer.layer) },
        swatch,
        el("span", { class: "fm-cka-name", text: layer.layer }),
        el("span", { class: "fm-cka-settled-text", text: settledText(layer) }),
      ),
    );
  });
  const legend = el("ol", { class: "fm-cka-legend", "aria-label": "Layers in model order" }, ...items);
  return { root: el("figure", { class: "fm-cka" }, chart, legend), chart };
}
