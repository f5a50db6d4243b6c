// "Looks for": each filter's strongest pool inputs at the chosen step, as the input patches under its strongest
// responses (Zeiler & Fergus 2014, Fig. 2), drawn from the `strongest` sheet PNG with crisp pixels. Hover tells which
// pool input a patch comes from (label, activation), click opens the filter (its film strip over steps: detail.js).
import { el, formatNumber, formatShape, reducedText, showNote, sizeCanvas, stepText } from "./dom.js";
import { tileRect } from "./render.js";

const CELL = 40; // CSS pixels a patch is scaled towards (by a whole factor, so one input pixel stays one block)
const GAP = 2; // between a filter's patches
const BLOCK_GAP = 14; // between filters
const LABEL = 14; // the filter's number above its patches

/** The patches per filter a `strongest` entry shows: its `ranks` (at most the format's MAX_TOP_K, docs/http-api.md). */
export function ranks(layout) {
  return layout.ranks ?? layout.tiles_per_filter;
}

/** The whole zoom that brings a `layout` tile nearest to `size` CSS pixels on its longer side (at least 1). */
export function patchZoom(layout, size = CELL) {
  return Math.max(1, Math.round(size / Math.max(layout.tile_width, layout.tile_height)));
}

/** Draws rank `rank` of `filter` from a decoded sheet (`image.bitmap`) into `context` at (x, y), `zoom` times its size. */
export function drawPatch(context, image, layout, filter, rank, x, y, zoom) {
  const rect = tileRect(layout, filter, rank);
  context.imageSmoothingEnabled = false;
  context.drawImage(image.bitmap, rect.x, rect.y, rect.width, rect.height, x, y, rect.width * zoom, rect.height * zoom);
}

/** A canvas of one patch, `zoom` times its size. */
export function patchCanvas(image, layout, filter, rank, zoom) {
  const canvas = el("canvas", { class: "fm-tile fm-patch" });
  drawPatch(sizeCanvas(canvas, layout.tile_width * zoom, layout.tile_height * zoom), image, layout, filter, rank, 0, 0, zoom);
  return canvas;
}

/** The pool index a topk record names: a whole number from 0, else null (a crafted log may hold -1 or 2.5). */
export function poolIndex(record) {
  const input = record?.input;
  return Number.isInteger(input) && input >= 0 ? input : null;
}

/** "label 7 · input 12 · activation 3.2": where a patch comes from (a topk record), or what is not known of it. */
export function patchText(record) {
  if (poolIndex(record) == null) return "no pool input";
  const label = record.label != null ? `label ${record.label} · ` : "";
  return `${label}input ${record.input} · activation ${formatNumber(record.value)}`;
}

export class LooksFor {
  /** `onSelect(filter)` is called when a filter's patches are clicked or chosen with the keyboard. */
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.view = null;
    this.cursor = null; // the filter the arrow keys are on
    this.summary = el("p", { class: "fm-view-summary" });
    this.canvas = el("canvas", { class: "fm-looks", tabindex: "0", role: "img" });
    this.tip = el("div", { class: "fm-tip", hidden: true });
    this.note = el("p", { class: "fm-pane-note", hidden: true });
    this.caption = el("div", { class: "fm-pane-caption", hidden: true }); // what this side shows when comparing
    this.root = el(
      "section",
      { class: "fm-looks-view fm-pane" },
      this.caption,
      this.summary,
      el("div", { class: "fm-grid-wrap" }, this.canvas, this.tip),
      this.note,
    );
    this.canvas.addEventListener("mousemove", (event) => this.hover(this.hit(event), event));
    this.canvas.addEventListener("mouseleave", () => this.hover(null));
    this.canvas.addEventListener("click", (event) => {
      const hit = this.hit(event);
      if (hit) this.onSelect(hit.filter);
    });
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    this.canvas.addEventListener("blur", () => this.moveCursor(null));
  }

  /** Arrow keys move between filters (the tip names each one's strongest input), Enter or Space opens one. */
  key(event) {
    if (!this.view) return;
    const across = this.geometry.across;
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -across, ArrowDown: across };
    if (event.key in moves) {
      const start = this.cursor ?? this.view.selected ?? 0;
      this.moveCursor(Math.min(this.view.layout.filters_shown - 1, Math.max(0, start + (this.cursor == null ? 0 : moves[event.key]))));
      event.preventDefault();
    } else if (event.key === "Enter" || event.key === " ") {
      this.onSelect(this.cursor ?? this.view.selected ?? 0);
      event.preventDefault();
    }
  }

  moveCursor(filter) {
    if (filter === this.cursor) return;
    this.cursor = filter;
    this.canvas.dataset.cursor = filter == null ? "" : String(filter);
    this.draw();
    if (filter == null) {
      this.tip.hidden = true;
      return;
    }
    const { x, y } = this.origin(filter);
    this.showTip({ filter, rank: 0 }, x, y + LABEL + this.geometry.cell.height + 4);
  }

  message(text) {
    showNote(this, text);
  }

  /**
   * Shows a decoded sheet. `view`: {image, layout (the layer's `strongest` entry), layer, step, selected, topk (the
   * step's records, or null until they are in)}.
   */
  show(view) {
    this.view = view;
    if (this.cursor != null && this.cursor >= view.layout.filters_shown) this.cursor = null;
    this.note.hidden = true;
    this.canvas.hidden = false;
    const { layout, layer, step } = view;
    const extra = layout.extra || {};
    const k = ranks(layout);
    const size = extra.patch_size ? `${extra.patch_size.join("×")} input pixels` : "";
    const where = extra.patch === "whole input" ? `whole inputs${extra.patch_reason ? ` (${extra.patch_reason})` : ""}` : `receptive fields of ${size}`;
    const pool = extra.pool_size ? ` of ${extra.pool_size} pool inputs` : "";
    this.summary.textContent = [
      layer.layer,
      layer.class,
      `output ${formatShape(layer)}`,
      `each filter's ${k} strongest${pool}, at ${stepText(layer.step_unit, step)}`,
      `patches: ${where}${layout.reduction !== "none" ? `, ${layout.reduction}` : ""}`,
      reducedText(layout.reduced),
    ]
      .filter(Boolean) // a JAX layer has no class
      .join(" · ");
    this.canvas.dataset.kind = "strongest";
    this.canvas.dataset.step = String(step);
    this.canvas.dataset.filters = String(layout.filters_shown);
    this.canvas.setAttribute(
      "aria-label",
      `The ${k} strongest pool inputs of each of ${layout.filters_shown} filters of ${layer.layer}; arrow keys move between filters, Enter opens one.`,
    );
    this.draw();
  }

  /** Labels arrived for the shown step: the tip can name the pool inputs. */
  labels(step, topk) {
    if (this.view && this.view.step === step) this.view.topk = topk;
  }

  /** Lays the filters out in blocks of k patches, as many blocks across as fit, then draws. */
  draw() {
    const view = this.view;
    if (!view) return;
    const { layout, image, selected } = view;
    const cursor = this.cursor;
    const k = ranks(layout);
    const zoom = patchZoom(layout);
    const cell = { width: layout.tile_width * zoom, height: layout.tile_height * zoom };
    const block = { width: k * (cell.width + GAP) - GAP, height: LABEL + cell.height };
    const width = Math.max(160, this.root.clientWidth - 2);
    const across = Math.max(1, Math.floor((width + BLOCK_GAP) / (block.width + BLOCK_GAP)));
    const rows = Math.ceil(layout.filters_shown / across);
    this.geometry = { zoom, cell, block, across };
    const context = sizeCanvas(this.canvas, Math.min(width, across * (block.width + BLOCK_GAP)), rows * (block.height + BLOCK_GAP));
    const style = getComputedStyle(this.root);
    context.font = "11px sans-serif";
    context.textBaseline = "top";
    for (let filter = 0; filter < layout.filters_shown; filter++) {
      const { x, y } = this.origin(filter);
      context.fillStyle = style.getPropertyValue(filter === selected ? "--fm-accent" : "--fm-muted");
      context.fillText(`filter ${filter}`, x, y);
      context.strokeStyle = style.getPropertyValue("--fm-muted");
      context.lineWidth = 1;
      for (let rank = 0; rank < k; rank++) {
        const left = x + rank * (cell.width + GAP);
        drawPatch(context, image, layout, filter, rank, left, y + LABEL, zoom);
        context.strokeRect(left - 0.5, y + LABEL - 0.5, cell.width + 1, cell.height + 1); // a black patch stays visible on a dark page
      }
      if (filter === selected || filter === cursor) {
        context.strokeStyle = style.getPropertyValue(filter === selected ? "--fm-accent" : "--fm-text");
        context.lineWidth = filter === selected ? 2 : 1;
        context.strokeRect(x - 3, y + LABEL - 3, block.width + 6, cell.height + 6);
      }
    }
  }

  /** Top-left corner of a filter's block (its label, then its patches), in CSS pixels. */
  origin(filter) {
    const { block, across } = this.geometry;
    return { x: (filter % across) * (block.width + BLOCK_GAP) + 3, y: Math.floor(filter / across) * (block.height + BLOCK_GAP) + 3 };
  }

  /** The filter and rank of the patch under a mouse event, or null. */
  hit(event) {
    if (!this.view) return null;
    const box = this.canvas.getBoundingClientRect();
    const { block, across, cell } = this.geometry;
    const px = event.clientX - box.left - 3;
    const py = event.clientY - box.top - 3;
    const col = Math.floor(px / (block.width + BLOCK_GAP));
    const row = Math.floor(py / (block.height + BLOCK_GAP));
    if (px < 0 || py < 0 || col >= across) return null;
    const filter = row * across + col;
    const inX = px - col * (block.width + BLOCK_GAP);
    const inY = py - row * (block.height + BLOCK_GAP) - LABEL;
    if (filter >= this.view.layout.filters_shown || inX >= block.width || inY >= cell.height) return null;
    const rank = Math.floor(inX / (cell.width + GAP));
    return { filter, rank: inY >= 0 && inX - rank * (cell.width + GAP) < cell.width ? rank : null };
  }

  hover(hit, event) {
    if (!hit || !this.view) {
      this.tip.hidden = true;
      return;
    }
    const box = this.canvas.getBoundingClientRect();
    this.showTip(hit, event.clientX - box.left + 12, event.clientY - box.top + 16);
  }

  /** The tip naming a filter's patch `hit.rank` (its pool input, label, activation), at (x, y) in the canvas. */
  showTip(hit, x, y) {
    const record = hit.rank == null ? null : this.view.topk?.records[hit.filter]?.[hit.rank];
    const where = hit.rank == null ? "" : ` · rank ${hit.rank + 1}`;
    const what = hit.rank == null ? "" : this.view.topk ? ` · ${patchText(record)}` : " · loading…";
    this.tip.textContent = `filter ${hit.filter}${where}${what}`;
    this.tip.hidden = false;
    this.tip.style.left = `${Math.max(0, Math.min(x, this.canvas.getBoundingClientRect().width - 260))}px`;
    this.tip.style.top = `${y}px`;
  }
}
