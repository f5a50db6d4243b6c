// Turns decoded grid PNGs into coloured tiles (display scale, colour table, NaN marker) and reads values back,
// decoding gray levels only through levels.js.
import { known, levelValue, unionRange } from "./levels.js";

/**
 * Where rank `rank` of `filter` lies in a grid PNG (a runs entry's layout): tile `filter · tiles_per_filter + rank`, row-major
 * (the grid kinds' `tile` rule in the runs listing's `kinds`; format/kinds/base.py, GridKind).
 */
export function tileRect(layout, filter, rank = 0) {
  const tile = filter * (layout.tiles_per_filter || 1) + rank;
  const row = Math.floor(tile / layout.cols);
  const col = tile % layout.cols;
  return {
    x: col * (layout.tile_width + layout.gutter),
    y: row * (layout.tile_height + layout.gutter),
    width: layout.tile_width,
    height: layout.tile_height,
  };
}

/**
 * The display scale of the shown frames: for "layer", one {lo, hi} over every probe and filter of each frame's step
 * (of both panes when comparing); otherwise null, each tile on its own range.
 */
export function displayRange(frames, norm) {
  if (norm !== "layer") return null;
  return frames.reduce((all, frame) => unionRange(all, frame?.layerRange), null);
}

/**
 * Gray level → colour-table index for one tile. `tile` is its {lo, hi} (levels.js), or null: levels shown as stored.
 * Each level's value is placed on the display scale (`range`, else the tile's own); diverging maps centre it on zero.
 */
function levelTable(tile, { map, range }) {
  const table = new Uint8Array(256);
  const decode = known(tile);
  const scale = known(range) ? range : tile;
  const magnitude = decode ? Math.max(Math.abs(scale.lo), Math.abs(scale.hi)) || 1 : 1;
  for (let level = 0; level < 256; level++) {
    let t = level / 255;
    if (decode) {
      const value = levelValue(level, tile);
      if (map.diverging) t = 0.5 + value / (2 * magnitude);
      else t = scale.hi > scale.lo ? (value - scale.lo) / (scale.hi - scale.lo) : 0;
    }
    table[level] = Math.round(Math.min(1, Math.max(0, t)) * 255);
  }
  return table;
}

/** The value at pixel (x, y) of tile `filter`: NaN for a NaN / Inf pixel, null when unknown (no stats, outside). */
export function valueAt(image, ranges, layout, filter, x, y) {
  const rect = tileRect(layout, filter);
  if (x < 0 || y < 0 || x >= rect.width || y >= rect.height || rect.x + x >= image.width || rect.y + y >= image.height) return null;
  const index = (rect.y + y) * image.width + rect.x + x;
  if (image.nan?.[index]) return NaN;
  const tile = ranges?.[filter];
  return known(tile) ? levelValue(image.gray[index], tile) : null;
}

/**
 * Colours the tiles `filters` of a decoded grid (`image` from store.js; `ranges` its tiles' [F] {lo, hi} or null).
 * `options`: {map, range (displayRange)}. Returns a canvas the size of the grid PNG; gutters and tiles not asked
 * for stay transparent.
 */
export function paintTiles(image, ranges, layout, filters, options) {
  const { width, height, gray, nan } = image;
  const pixels = new ImageData(width, height);
  const out = pixels.data;
  const { table: colours, marker } = options.map;
  for (const filter of filters) {
    const levels = levelTable(ranges?.[filter], options);
    const rect = tileRect(layout, filter);
    const bottom = Math.min(rect.y + rect.height, height);
    const right = Math.min(rect.x + rect.width, width);
    for (let y = rect.y; y < bottom; y++) {
      for (let x = rect.x; x < right; x++) {
        const index = y * width + x;
        const o = index * 4;
        if (nan && nan[index]) {
          out[o] = marker[0];
          out[o + 1] = marker[1];
          out[o + 2] = marker[2];
        } else {
          const c = levels[gray[index]] * 3;
          out[o] = colours[c];
          out[o + 1] = colours[c + 1];
          out[o + 2] = colours[c + 2];
        }
        out[o + 3] = 255;
      }
    }
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").putImageData(pixels, 0, 0);
  return canvas;
}

/** Draws tile `filter` of a painted grid into `context` at (x, y), `width` × `height` CSS pixels. */
export function drawTile(context, painted, layout, filter, x, y, width, height) {
  const rect = tileRect(layout, filter);
  context.drawImage(painted, rect.x, rect.y, rect.width, rect.height, x, y, width, height);
}
