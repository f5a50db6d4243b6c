// DOM helpers. Text always goes in through textContent / text nodes, never as HTML.

/** Creates an element: `text` sets textContent, `class` the class, `on<event>` a listener, booleans toggle attributes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  node.append(...children.filter((child) => child != null && child !== false));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Same as el() for SVG elements. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attributes);
  node.append(...children.filter((child) => child != null && child !== false));
  return node;
}

function setAttributes(node, attributes) {
  for (const [key, value] of Object.entries(attributes)) {
    if (value == null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.setAttribute("class", value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (typeof value === "boolean") node.toggleAttribute(key, value);
    else node.setAttribute(key, String(value));
  }
}

/** A short number for labels: 3 significant digits, NaN and infinities spelled out. */
export function formatNumber(value) {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "−Inf";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(3)));
}

/** A layer entry's shape channels last (its `map_shape`, docs/http-api.md): `[28, 28, 8]` → "28×28×8". */
export function formatShape(layer) {
  return (layer.map_shape || layer.output_shape || []).filter((size) => size != null).join("×") || "?";
}

const REDUCED = { max_tile_size: (v) => `tiles ≤ ${v} px`, max_patch_size: (v) => `patches ≤ ${v} px`, top_k: (v) => `${v} strongest kept` };

/** A series' `reduced` content (what the step budget lowered) as a short note, or "" when nothing was. */
export function reducedText(reduced) {
  const parts = Object.entries(reduced || {}).map(([name, value]) => (REDUCED[name] ? REDUCED[name](value) : `${name} ${value}`));
  return parts.length ? `reduced to fit max_step_bytes: ${parts.join(", ")}` : "";
}

/** A canvas sized for crisp drawing at the device pixel ratio; returns its 2D context with pixel smoothing off. */
export function sizeCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.max(1, Math.round(width * ratio));
  canvas.height = Math.max(1, Math.round(height * ratio));
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.imageSmoothingEnabled = false;
  return context;
}

/** A step as the panel shows it everywhere: "epoch 3", "batch 200" (`unit`: the layer's step_unit). */
export function stepText(unit, step) {
  return `${unit} ${step}`;
}

const PLURALS = { epoch: "epochs", batch: "batches" };

/** The plural of a step unit: "epochs", "batches" (any other unit gets an "s"). */
export function unitPlural(unit) {
  return PLURALS[unit] || `${unit}s`;
}

/** Replaces a view's canvas (and hides its tooltip) by the short `text` in its note: missing data, an error. */
export function showNote(view, text) {
  view.view = null;
  view.canvas.hidden = true;
  view.tip.hidden = true;
  view.note.textContent = text;
  view.note.hidden = false;
}

/** At most `count` of `items`, evenly spread, first and last included. */
export function sample(items, count) {
  if (items.length <= count) return items;
  return Array.from({ length: count }, (_, index) => items[Math.round((index * (items.length - 1)) / (count - 1))]);
}
