// The probe picker: the probe inputs themselves, with their labels.
import * as api from "./api.js";
import { el } from "./dom.js";

export class ProbePicker {
  /** `onPick(index)` is called when a probe is chosen. */
  constructor(onPick) {
    this.onPick = onPick;
    this.key = "";
    this.list = el("div", { class: "fm-probe-list" });
    this.root = el("div", { class: "fm-probes", role: "group", "aria-label": "Probe" }, el("span", { class: "fm-probes-title", text: "Probe" }), this.list);
  }

  /** `probes`: the run's {count, labels} (null when no pictures were logged), `labels` the layer's probe labels. */
  update(run, probes, labels, selected, disabled) {
    const count = probes ? probes.count : labels.length;
    const names = probes ? probes.labels : labels;
    const key = JSON.stringify([run, count, names, Boolean(probes)]);
    if (key !== this.key) {
      this.key = key;
      this.list.replaceChildren(
        ...Array.from({ length: count }, (_, index) => {
          const label = String(names[index] ?? index);
          return el(
            "button",
            { type: "button", class: "fm-probe", "aria-label": `Probe ${index}, label ${label}`, title: `Probe ${index} (label ${label})`, onclick: () => this.onPick(index) },
            probes ? el("img", { src: api.probeURL(run, index), alt: "", draggable: "false" }) : null,
            el("span", { text: label }),
          );
        }),
      );
    }
    this.root.classList.toggle("fm-disabled", disabled);
    this.root.title = disabled ? "Kernels do not depend on the probe" : "";
    [...this.list.children].forEach((button, index) => {
      button.setAttribute("aria-pressed", String(index === selected));
      button.disabled = disabled;
    });
  }
}
