// The selection, kept in the iframe's own location.hash so a reload shows the same view.

const DEFAULTS = Object.freeze({
  run: "",
  layer: "",
  probe: 0,
  step: null, // null: the latest step
  follow: true, // jump to new steps as they are logged; in the hash as "no step"
  view: "activations", // or "weights"
  cmap: "gray",
  norm: "filter", // or "layer"
  compare: "off", // "steps" or "runs"
  compareStep: null, // null: the first step
  compareRun: "",
  filter: null, // the filter shown in the detail view
});

const INTEGERS = new Set(["probe", "step", "compareStep", "filter"]);
const CHOICES = { view: ["activations", "weights"], norm: ["filter", "layer"], compare: ["off", "steps", "runs"] };

/** The selection stored in the hash; anything missing or malformed is left at its default. */
export function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const state = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    const text = params.get(key);
    if (text == null) continue;
    if (INTEGERS.has(key)) {
      if (/^\d+$/.test(text)) state[key] = Number(text);
    } else if (!CHOICES[key] || CHOICES[key].includes(text)) {
      state[key] = text;
    }
  }
  state.follow = state.step == null;
  return state;
}

/** Writes the non-default parts of `state` to the hash without adding a history entry. */
export function writeHash(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (key === "follow" || value === DEFAULTS[key] || value == null) continue;
    if (key === "step" && state.follow) continue;
    if ((key === "compareStep" && state.compare !== "steps") || (key === "compareRun" && state.compare !== "runs")) continue;
    params.set(key, String(value));
  }
  // An absolute URL: a relative "#…" would resolve against the page's <base>, not the page.
  const url = new URL(location.href);
  url.hash = params.toString();
  if (url.href !== location.href) history.replaceState(history.state, "", url.href);
}
