// The top bar: run, layer, view (activations / weights / looks for / all layers / convergence), colormap, normalisation and compare mode.
import { COLORMAPS } from "./colormaps.js";
import { el, formatShape } from "./dom.js";
import { offers } from "./selection.js";

/** A labelled <select>; `fill(select, options)` keeps it in sync without rebuilding unchanged lists. */
function labelledSelect(text, onChange) {
  const select = el("select", { "aria-label": text, onchange: () => onChange(select.value) });
  return { select, root: el("label", { class: "fm-field" }, el("span", { text }), select) };
}

/** Sets the options ([value, text, disabled?]) and the selected value of a <select>. */
export function fillSelect(select, options, value) {
  const key = JSON.stringify(options);
  if (select.dataset.options !== key) {
    select.replaceChildren(
      ...options.map(([optionValue, text, disabled]) => {
        const option = new Option(text, optionValue);
        option.disabled = Boolean(disabled);
        return option;
      }),
    );
    select.dataset.options = key;
  }
  select.value = value;
}

/** Toggle buttons of which one is pressed. */
export function segmented(text, choices, onPick) {
  const buttons = choices.map(([value, label]) =>
    el("button", { type: "button", class: "fm-segment", "data-value": value, text: label, onclick: () => onPick(value) }),
  );
  return { buttons, root: el("div", { class: "fm-field", role: "group", "aria-label": text }, el("span", { text }), el("div", { class: "fm-segments" }, ...buttons)) };
}

export function press(buttons, value) {
  for (const button of buttons) button.setAttribute("aria-pressed", String(button.dataset.value === value));
}

export const segment = (buttons, value) => buttons.find((button) => button.dataset.value === value);

export class Toolbar {
  /** `onChange(patch)` receives the changed part of the selection. */
  constructor(onChange) {
    this.run = labelledSelect("Run", (run) => onChange({ run }));
    this.layer = labelledSelect("Layer", (layer) => onChange({ layer }));
    const views = [
      ["activations", "Activations"],
      ["weights", "Weights"],
      ["strongest", "Looks for"],
      ["layers", "All layers"],
      ["convergence", "Convergence"],
    ];
    this.view = segmented("Show", views, (view) => onChange({ view }));
    this.cmap = labelledSelect("Colormap", (cmap) => onChange({ cmap }));
    this.norm = segmented("Scale", [["filter", "Per filter"], ["layer", "Per layer"]], (norm) => onChange({ norm }));
    this.compare = labelledSelect("Compare", (compare) => onChange({ compare }));
    fillSelect(this.cmap.select, COLORMAPS.map((map) => [map.id, map.label]), "gray");
    this.root = el(
      "header",
      { class: "fm-toolbar" },
      this.run.root,
      this.layer.root,
      this.view.root,
      this.cmap.root,
      this.norm.root,
      this.compare.root,
    );
  }

  /** `runs` from the runs route, `shown` what is shown (selection.js): the pressed choices and those offered. */
  update(runs, { state, run, layer, kind, all, convergence, norm }) {
    const offered = offers(runs, layer, kind);
    fillSelect(this.run.select, runs.map((entry) => [entry.run, entry.run]), run.run);
    fillSelect(
      this.layer.select,
      run.layers.map((entry) => [entry.layer, `${entry.layer} — ${[entry.class, formatShape(entry)].filter(Boolean).join(" · ")}`]),
      layer.layer,
    );
    press(this.view.buttons, all ? "layers" : convergence ? "convergence" : kind);
    const weights = segment(this.view.buttons, "weights");
    weights.disabled = !offered.weights;
    weights.title = offered.weights ? "Each filter's kernel, averaged over its input channels" : `${layer.layer} has no kernel`;
    const strongest = segment(this.view.buttons, "strongest");
    strongest.disabled = !offered.strongest;
    strongest.title = offered.strongest
      ? "Each filter's strongest inputs of the pool: the input patches it responds to most"
      : `${layer.layer} has no strongest inputs logged (a pool= for the writer)`;
    segment(this.view.buttons, "layers").title = "Every layer's feature maps at this step, one under the other";
    const responses = run.layers.some((entry) => entry.has_responses);
    const converging = segment(this.view.buttons, "convergence");
    converging.disabled = !responses;
    converging.title = responses ? "Has each layer settled? Its similarity (linear CKA) to the latest step, every layer on one chart" : `${run.run} has no responses logged (a pool= for the writer)`;
    fillSelect(this.cmap.select, COLORMAPS.map((map) => [map.id, map.label]), state.cmap);
    press(this.norm.buttons, norm);
    const perFilter = segment(this.norm.buttons, "filter");
    const perLayer = segment(this.norm.buttons, "layer");
    perLayer.disabled = !offered.perLayer;
    perLayer.title = offered.perLayer ? "One scale for all filters (from the stats' min / max)" : "Needs activation stats: kernels are scaled per filter";
    perFilter.disabled = !offered.perFilter;
    perFilter.title = offered.perFilter ? "Each filter scaled to its own min / max" : `${layer.layer}'s maps were logged on one scale for the whole layer`;
    fillSelect(
      this.compare.select,
      [
        ["off", "Off"],
        ["steps", "Two steps"],
        ["runs", "Two runs", !offered.compareRuns],
      ],
      state.compare,
    );
  }
}
