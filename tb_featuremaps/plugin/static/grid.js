// One grid of filter tiles on a canvas, laid out to fit the pane: hover shows a filter's stats, click or Enter selects it.
import { el, formatNumber, sizeCanvas } from "./dom.js";
import { drawTile } from "./render.js";

const GAP = 6; // CSS pixels between tiles, room for the selection outline
const MAX_TILE = 192; // CSS pixels
const MIN = 0;
const MAX = 1;
const MEAN = 2;

export class GridView {
  /** `onSelect(filter)` is called when a tile is clicked or chosen with the keyboard. */
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.view = null;
    this.cursor = null; // the filter under the mouse or keyboard cursor
    this.caption = el("figcaption", { class: "fm-pane-caption" });
    this.canvas = el("canvas", { class: "fm-grid", tabindex: "0", role: "img" });
    this.tip = el("div", { class: "fm-tip", hidden: true });
    this.note = el("p", { class: "fm-pane-note", hidden: true });
    this.root = el("figure", { class: "fm-pane" }, this.caption, el("div", { class: "fm-grid-wrap" }, this.canvas, this.tip), this.note);
    this.canvas.addEventListener("mousemove", (event) => this.hover(this.hit(event)));
    this.canvas.addEventListener("mouseleave", () => this.hover(null));
    this.canvas.addEventListener("click", (event) => {
      const filter = this.hit(event);
      if (filter != null) this.onSelect(filter);
    });
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    this.canvas.addEventListener("blur", () => this.hover(null));
  }

  /**
   * Shows a painted grid. `view`: {painted, layout, count, stats ([F][5] or null), dead (bool[F] or null),
   * selected, kind, step, label (for screen readers)}.
   */
  show(view) {
    this.view = view;
    this.note.hidden = true;
    this.canvas.hidden = false;
    this.canvas.dataset.kind = view.kind;
    this.canvas.dataset.step = String(view.step);
    this.canvas.dataset.filters = String(view.count);
    this.canvas.setAttribute("aria-label", `${view.label}. Arrow keys move between filters, Enter opens one.`);
    this.draw();
    if (this.cursor != null) this.hover(this.cursor);
  }

  /** Replaces the grid by a short message (missing data, an error). */
  message(text) {
    this.view = null;
    this.canvas.hidden = true;
    this.tip.hidden = true;
    this.note.textContent = text;
    this.note.hidden = false;
  }

  /** Picks the column count that gives the largest integer zoom fitting the pane's width and the window, then draws. */
  draw() {
    const view = this.view;
    if (!view) return;
    const { tile_width: width, tile_height: height } = view.layout;
    const availableWidth = Math.max(160, this.root.clientWidth - 2);
    const availableHeight = Math.max(200, window.innerHeight - 330);
    let best = null;
    for (let columns = 1; columns <= view.count; columns++) {
      const rows = Math.ceil(view.count / columns);
      const fit = Math.min((availableWidth - GAP * (columns + 1)) / (columns * width), (availableHeight - GAP * (rows + 1)) / (rows * height));
      const zoom = Math.max(1, Math.floor(Math.min(MAX_TILE / Math.max(width, height), fit)));
      const empty = rows * columns - view.count;
      if (!best || zoom > best.zoom || (zoom === best.zoom && empty < best.empty)) best = { columns, rows, zoom, empty };
    }
    this.columns = best.columns;
    this.cell = { width: width * best.zoom, height: height * best.zoom };
    const context = sizeCanvas(this.canvas, best.columns * (this.cell.width + GAP) + GAP, best.rows * (this.cell.height + GAP) + GAP);
    const style = getComputedStyle(this.root);
    for (let filter = 0; filter < view.count; filter++) {
      const { x, y } = this.origin(filter);
      drawTile(context, view.painted, view.layout, filter, x, y, this.cell.width, this.cell.height);
      if (view.dead?.[filter]) this.markDead(context, x, y, style.getPropertyValue("--fm-dead"));
    }
    if (view.selected != null && view.selected < view.count) {
      this.outline(context, view.selected, style.getPropertyValue("--fm-accent"), 3);
    }
    if (this.cursor != null && this.cursor < view.count && this.cursor !== view.selected) {
      this.outline(context, this.cursor, style.getPropertyValue("--fm-text"), 1);
    }
  }

  /** Top-left corner of a filter's tile on the canvas, in CSS pixels. */
  origin(filter) {
    const col = filter % this.columns;
    const row = Math.floor(filter / this.columns);
    return { x: GAP + col * (this.cell.width + GAP), y: GAP + row * (this.cell.height + GAP) };
  }

  outline(context, filter, colour, lineWidth) {
    const { x, y } = this.origin(filter);
    const inset = -lineWidth / 2 - 1;
    context.strokeStyle = colour;
    context.lineWidth = lineWidth;
    context.strokeRect(x + inset, y + inset, this.cell.width - 2 * inset, this.cell.height - 2 * inset);
  }

  markDead(context, x, y, colour) {
    const { width, height } = this.cell;
    context.save();
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.globalAlpha = 0.85;
    context.strokeRect(x + 1, y + 1, width - 2, height - 2);
    context.beginPath();
    context.moveTo(x, y);
    context.lineTo(x + width, y + height);
    context.moveTo(x + width, y);
    context.lineTo(x, y + height);
    context.stroke();
    context.restore();
  }

  /** The filter under a mouse event, or null. */
  hit(event) {
    if (!this.view) return null;
    const box = this.canvas.getBoundingClientRect();
    const x = event.clientX - box.left - GAP;
    const y = event.clientY - box.top - GAP;
    const col = Math.floor(x / (this.cell.width + GAP));
    const row = Math.floor(y / (this.cell.height + GAP));
    if (x < 0 || y < 0 || col >= this.columns) return null;
    if (x - col * (this.cell.width + GAP) >= this.cell.width || y - row * (this.cell.height + GAP) >= this.cell.height) return null;
    const filter = row * this.columns + col;
    return filter < this.view.count ? filter : null;
  }

  /** Moves the cursor to `filter` (or clears it) and shows its index and stats beside the tile. */
  hover(filter) {
    const changed = filter !== this.cursor;
    this.cursor = filter;
    if (changed) this.draw();
    if (filter == null || !this.view) {
      this.tip.hidden = true;
      return;
    }
    const row = this.view.stats?.[filter];
    const parts = [`filter ${filter}`];
    if (row) parts.push(`min ${formatNumber(row[MIN])}`, `max ${formatNumber(row[MAX])}`, `mean ${formatNumber(row[MEAN])}`);
    if (this.view.dead?.[filter]) parts.push("dead");
    this.tip.textContent = parts.join(" · ");
    this.tip.hidden = false;
    const { x, y } = this.origin(filter);
    this.tip.style.left = `${Math.max(0, x)}px`;
    this.tip.style.top = `${y + this.cell.height + 4}px`;
  }

  key(event) {
    if (!this.view) return;
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -this.columns, ArrowDown: this.columns };
    if (event.key in moves) {
      const start = this.cursor ?? this.view.selected ?? 0;
      this.hover(Math.min(this.view.count - 1, Math.max(0, start + (this.cursor == null ? 0 : moves[event.key]))));
      event.preventDefault();
    } else if ((event.key === "Enter" || event.key === " ") && this.cursor != null) {
      this.onSelect(this.cursor);
      event.preventDefault();
    }
  }
}
