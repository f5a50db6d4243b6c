// One grid of filter tiles on a canvas, scaled to the pane: hover shows a filter's stats and the value under the
// pointer, click or Enter selects it.
import { el, formatNumber, showNote, sizeCanvas } from "./dom.js";
import { fitGrid } from "./layout.js";
import { drawTile, valueAt } from "./render.js";

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
    this.canvas.addEventListener("mousemove", (event) => {
      const hit = this.hit(event);
      this.hover(hit ? hit.filter : null, hit);
    });
    this.canvas.addEventListener("mouseleave", () => this.hover(null));
    this.canvas.addEventListener("click", (event) => {
      const hit = this.hit(event);
      if (hit) this.onSelect(hit.filter);
    });
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    this.canvas.addEventListener("blur", () => this.hover(null));
  }

  /**
   * Shows a painted grid. `view`: {painted, image (decoded PNG), ranges ([F] {lo, hi} or null), layout, count,
   * stats ([F] records or null), dead (bool[F] or null), selected, kind, step, label (for screen readers),
   * arranged (optional, selectivity.js: {order: the filter at each position, colours: [F] CSS colours, notes: [F] texts})}.
   */
  show(view) {
    this.view = view;
    const arranged = view.arranged?.order.length === view.count ? view.arranged : null;
    this.order = arranged?.order || Array.from({ length: view.count }, (_, filter) => filter);
    this.positions = new Map(this.order.map((filter, position) => [filter, position]));
    this.canvas.dataset.order = this.order.join(",");
    this.note.hidden = true;
    this.canvas.hidden = false;
    this.canvas.dataset.kind = view.kind;
    this.canvas.dataset.step = String(view.step);
    this.canvas.dataset.filters = String(view.count);
    this.canvas.setAttribute("aria-label", `${view.label}. Arrow keys move between filters, Enter opens one.`);
    this.draw();
    if (this.cursor != null) this.hover(this.cursor, this.point);
  }

  /** Replaces the grid by a short message (missing data, an error). */
  message(text) {
    showNote(this, text);
  }

  /** Lays the tiles out to fill the pane's width (and fit the window when they can), then draws. */
  draw() {
    const view = this.view;
    if (!view) return;
    const fit = fitGrid(view.count, view.layout, Math.max(160, this.root.clientWidth - 2), window.innerHeight);
    this.columns = fit.columns;
    this.cell = fit.cell;
    this.gap = fit.gap;
    const context = sizeCanvas(this.canvas, fit.width, fit.height);
    const style = getComputedStyle(this.root);
    for (let filter = 0; filter < view.count; filter++) {
      const { x, y } = this.origin(filter);
      drawTile(context, view.painted, view.layout, filter, x, y, this.cell.width, this.cell.height);
      if (view.dead?.[filter]) this.markDead(context, x, y, style.getPropertyValue("--fm-dead"));
      const colour = view.arranged?.colours[filter];
      if (colour) this.outline(context, filter, colour, 2);
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
    const position = this.positions.get(filter) ?? filter;
    const col = position % this.columns;
    const row = Math.floor(position / this.columns);
    return { x: this.gap + col * (this.cell.width + this.gap), y: this.gap + row * (this.cell.height + this.gap) };
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

  /** The filter under a mouse event and the tile pixel {x, y} it points at, or null. */
  hit(event) {
    if (!this.view) return null;
    const box = this.canvas.getBoundingClientRect();
    const { width, height } = this.cell;
    const x = event.clientX - box.left - this.gap;
    const y = event.clientY - box.top - this.gap;
    const col = Math.floor(x / (width + this.gap));
    const row = Math.floor(y / (height + this.gap));
    if (x < 0 || y < 0 || col >= this.columns) return null;
    const inX = x - col * (width + this.gap);
    const inY = y - row * (height + this.gap);
    if (inX >= width || inY >= height) return null;
    const position = row * this.columns + col;
    if (position >= this.view.count) return null;
    const filter = this.order[position];
    const { tile_width: tileWidth, tile_height: tileHeight } = this.view.layout;
    return { filter, x: Math.floor((inX / width) * tileWidth), y: Math.floor((inY / height) * tileHeight) };
  }

  /**
   * Moves the cursor to `filter` (or clears it) and shows its index, stats and the value at tile pixel `point`
   * (the pointer's; for the keyboard, only 1x1 tiles have one) beside the tile.
   */
  hover(filter, point = null) {
    const changed = filter !== this.cursor;
    this.cursor = filter;
    this.point = point;
    if (changed) this.draw();
    if (filter == null || !this.view) {
      this.tip.hidden = true;
      return;
    }
    const { stats, dead, layout, image, ranges } = this.view;
    const row = stats?.[filter];
    const parts = [`filter ${filter}`];
    if (row) parts.push(`min ${formatNumber(row.min)}`, `max ${formatNumber(row.max)}`, `mean ${formatNumber(row.mean)}`);
    const at = point || (layout.tile_width === 1 && layout.tile_height === 1 ? { x: 0, y: 0 } : null);
    const value = at && image ? valueAt(image, ranges, layout, filter, at.x, at.y) : null;
    if (value != null) parts.push(`value ${formatNumber(value)}`);
    if (dead?.[filter]) parts.push("dead");
    if (this.view.arranged?.notes[filter]) parts.push(this.view.arranged.notes[filter]);
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
      const start = this.positions.get(this.cursor ?? this.view.selected ?? this.order[0]);
      this.hover(this.order[Math.min(this.view.count - 1, Math.max(0, start + (this.cursor == null ? 0 : moves[event.key])))]);
      event.preventDefault();
    } else if ((event.key === "Enter" || event.key === " ") && this.cursor != null) {
      this.onSelect(this.cursor);
      event.preventDefault();
    }
  }
}
