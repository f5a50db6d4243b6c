// The step slider with first / play-pause / last buttons and the "follow latest" switch.
import { el, stepText, svg } from "./dom.js";

const ICONS = {
  first: "M5 4h2v12H5zM16 4v12L8 10z",
  play: "M6 4v12l10-6z",
  pause: "M5 4h4v12H5zM11 4h4v12h-4z",
  last: "M13 4h2v12h-2zM4 4v12l8-6z",
};

function icon(name) {
  return svg("svg", { viewBox: "0 0 20 20", width: 16, height: 16, "aria-hidden": "true" }, svg("path", { d: ICONS[name] }));
}

function iconButton(name, label, onClick) {
  return el("button", { type: "button", class: "fm-icon", "aria-label": label, title: label, onclick: onClick }, icon(name));
}

export class StepBar {
  /** Callbacks: onStep(index), onPlay() (toggle), onFollow(on). */
  constructor({ onStep, onPlay, onFollow }) {
    this.steps = [];
    this.first = iconButton("first", "First step", () => onStep(0));
    this.play = iconButton("play", "Play", onPlay);
    this.last = iconButton("last", "Last step", () => onStep(this.steps.length - 1));
    this.slider = el("input", { type: "range", class: "fm-slider", min: "0", max: "0", step: "1", "aria-label": "Step" });
    this.slider.addEventListener("input", () => onStep(Number(this.slider.value)));
    this.label = el("output", { class: "fm-step-label", "aria-live": "polite" });
    this.position = el("span", { class: "fm-step-position" });
    this.follow = el("input", { type: "checkbox", onchange: () => onFollow(this.follow.checked) });
    this.root = el(
      "div",
      { class: "fm-stepbar" },
      this.first,
      this.play,
      this.last,
      this.slider,
      el("div", { class: "fm-step-text" }, this.label, this.position),
      el("label", { class: "fm-follow", title: "Jump to new steps as training logs them" }, this.follow, el("span", { text: "Follow latest" })),
    );
  }

  /** `wallTime` (seconds) of the shown step, or null. */
  update({ steps, index, unit, playing, follow, wallTime }) {
    this.steps = steps;
    this.slider.max = String(Math.max(0, steps.length - 1));
    this.slider.value = String(index);
    const text = stepText(unit, steps[index]);
    this.slider.setAttribute("aria-valuetext", text);
    this.label.textContent = text;
    const when = wallTime ? ` · ${new Date(wallTime * 1000).toLocaleTimeString()}` : "";
    this.position.textContent = `${index + 1} of ${steps.length}${when}`;
    this.play.replaceChildren(icon(playing ? "pause" : "play"));
    this.play.setAttribute("aria-label", playing ? "Pause" : "Play");
    this.play.title = playing ? "Pause" : "Play through the steps";
    this.first.disabled = index === 0;
    this.last.disabled = index === steps.length - 1;
    this.play.disabled = steps.length < 2;
    this.follow.checked = follow;
  }
}
