// Filters in the grid ordered and coloured by their class selectivity index (Morcos et al. 2018) at the shown step:
// the "Order" toggle, the order and each tile's outline colour from the selectivity route, and their legend.
import * as api from "./api.js";
import { colormap, tableColour } from "./colormaps.js";
import { el, formatNumber } from "./dom.js";
import { ScaleBar } from "./scalebar.js";
import { press, segmented } from "./toolbar.js";

/** Whether the selectivity of `layer` (a runs entry) of `run` may be shown: it logged responses and its pool has labels (the
 * selectivity route says whether they are classes). */
export const selectivityOffered = (run, layer) => Boolean(layer.has_responses && run.pool?.labels?.length);

/** The outline colour of a selectivity index (0 … 1, viridis); null where it is not known. */
export const indexColour = (index) => (Number.isFinite(index) ? tableColour(colormap("viridis"), Math.round(Math.min(1, Math.max(0, index)) * 255)) : null);

/** Filter numbers by descending selectivity index, unknown (NaN) last, ties by filter number. */
export function bySelectivity(index) {
  const key = (filter) => (Number.isFinite(index[filter]) ? index[filter] : -Infinity);
  return index.map((_, filter) => filter).sort((a, b) => key(b) - key(a) || a - b);
}

/** One step's selectivity answer, cached like the other answers (a step's responses never change). */
export const loadSelectivity = (store, run, layer, step, time) =>
  store.answer(["selectivity", run, layer, step, time], () => api.selectivity(run, layer, step));

/**
 * The grid's arrangement (grid.js) at `step` of `layer` in `run` (runs entries): {order, colours, notes}, the order by
 * index only when `sort` is "selectivity"; null when the layer's selectivity is not offered.
 */
export async function arrangement(store, run, layer, step, sort) {
  if (!selectivityOffered(run, layer)) return null;
  const answer = await loadSelectivity(store, run.run, layer.layer, step, store.wallTime(run.run, layer.layer, "activations", step));
  const count = layer.filters_shown;
  const index = answer.index.slice(0, count);
  const order = sort === "selectivity" ? bySelectivity(index) : index.map((_, filter) => filter);
  const notes = index.map((value, filter) =>
    Number.isFinite(value) ? `selectivity ${formatNumber(value)} · prefers ${answer.classes[answer.preferred[filter]]}` : "selectivity not known",
  );
  return { order, colours: index.map(indexColour), notes, step };
}

export class SelectivityControl {
  /** `onPick(patch)` changes the selection's `sort`. */
  constructor(onPick) {
    this.toggle = segmented("Order", [["index", "Filter number"], ["selectivity", "Class selectivity"]], (sort) => onPick({ sort }));
    this.scale = new ScaleBar();
    this.legend = el("span", { class: "fm-legend-item" }, el("span", { text: "outline: class selectivity" }), this.scale.root);
    this.root = el("div", { class: "fm-selectivity", hidden: true }, this.toggle.root, this.legend);
    this.toggle.buttons[1].title = "Filters sorted by their class selectivity index (Morcos et al. 2018) at this step, most selective first";
  }

  /** Shows the toggle when the layer's selectivity is offered, with `sort` pressed. */
  update(offered, sort) {
    this.root.hidden = !offered;
    press(this.toggle.buttons, sort);
    if (offered) this.scale.show(colormap("viridis"), 0, 1);
  }
}
