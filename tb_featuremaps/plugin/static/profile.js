// The detail view's class profile of one filter over training (the filter_selectivity route): its class means at the
// shown step as bars (the preferred class marked), its preferred class at every step, its selectivity index and its
// top-k overlap with the previous step over steps.
import * as api from "./api.js";
import { lineChart } from "./chart.js";
import { el, formatNumber, sample, stepText, unitPlural } from "./dom.js";
import { version } from "./store.js";

/** At most this many steps in the "preferred class over steps" row (then evenly spread, last included). */
const PREFERRED_CELLS = 60;

/**
 * The nodes of the class profile of filter `filter` of `layer` (a runs entry) in `run`, at `step`; `onPick(patch)`
 * moves to a step.
 */
export async function classProfile(store, { run, layer, filter, step, onPick }) {
  const answer = await store.answer(["filter_selectivity", run, layer.layer, filter, version(layer)], () => api.filterSelectivity(run, layer.layer, filter));
  const unit = layer.step_unit;
  const position = answer.steps.indexOf(step);
  if (position < 0) return [el("p", { class: "fm-pane-note", text: `No responses were logged at ${stepText(unit, step)}.` })];
  const means = answer.means[position];
  const preferred = answer.preferred[position];
  const top = Math.max(...means.map(Math.abs).filter(Number.isFinite), 0) || 1;
  const bars = el(
    "ol",
    { class: "fm-class-means", "aria-label": `Class means at ${stepText(unit, step)}` },
    ...answer.classes.map((name, index) =>
      el(
        "li",
        { "data-class": name, "aria-current": String(index === preferred) },
        el("span", { class: "fm-class-name", text: name }),
        el("span", { class: "fm-class-bar" }, el("span", { style: `width: ${Math.max(0, (100 * (Number.isFinite(means[index]) ? means[index] : 0)) / top)}%` })),
        el("span", { class: "fm-class-value", text: formatNumber(means[index]) }),
      ),
    ),
  );
  const index = answer.index[position];
  const facts = el("p", {
    class: "fm-profile-facts",
    text: Number.isFinite(index)
      ? `Prefers ${answer.classes[preferred]} · selectivity index ${formatNumber(index)} at ${stepText(unit, step)}`
      : `Selectivity not known at ${stepText(unit, step)} (no positive class mean)`,
  });
  const preferredAt = (at) => answer.classes[answer.preferred[at]] ?? "–"; // −1: silent on every class
  const cells = sample([...answer.steps.keys()], PREFERRED_CELLS).map((at) =>
    el("button", {
      type: "button",
      class: "fm-preferred",
      "aria-pressed": String(at === position),
      title: `${stepText(unit, answer.steps[at])}: prefers ${preferredAt(at)}`,
      text: preferredAt(at),
      onclick: () => onPick({ step: answer.steps[at] }),
    }),
  );
  const preferredRow = el("div", { class: "fm-preferred-row", "aria-label": `Preferred class over ${unitPlural(unit)}` }, ...cells);
  const tick = (at) => stepText(unit, at);
  const chart = lineChart({
    xs: answer.steps,
    series: [
      { label: "selectivity", className: "fm-line-all", values: answer.index },
      { label: "top-k overlap", className: "fm-line-probe", values: answer.overlap },
    ],
    marker: step,
    onPick: (at) => onPick({ step: at }),
    label: `Selectivity index and top-k overlap with the previous step of filter ${filter} over ${unitPlural(unit)}`,
    tick,
    height: 130,
  });
  const overlap = answer.overlap[position];
  const overlapText = el("p", {
    class: "fm-profile-facts",
    text: Number.isFinite(overlap)
      ? `Top-k overlap with the previous step: ${formatNumber(overlap)} (Jaccard of the strongest pool inputs)`
      : "Top-k overlap with the previous step: not known here (the first step, or no top-k logged)",
  });
  return [facts, bars, el("p", { class: "fm-pane-note", text: `Preferred class over ${unitPlural(unit)}` }), preferredRow, chart, overlapText];
}
