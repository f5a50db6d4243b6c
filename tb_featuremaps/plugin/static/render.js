// Turns decoded grid PNGs into coloured tiles: per-filter or per-layer normalisation, colour table, NaN marker.

const MIN = 0;
const MAX = 1;

/** Where tile `filter` lies in the grid PNG (docs/format.md). */
function tileRect(layout, filter) {
  const row = Math.floor(filter / layout.cols);
  const col = filter % layout.cols;
  return {
    x: col * (layout.tile_width + layout.gutter),
    y: row * (layout.tile_height + layout.gutter),
    width: layout.tile_width,
    height: layout.tile_height,
  };
}

/** {lo, hi} over the finite min / max of every filter in `rows` ([F][5] stats of one probe), or null. */
export function valueRange(rows) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of rows || []) {
    if (Number.isFinite(row[MIN])) lo = Math.min(lo, row[MIN]);
    if (Number.isFinite(row[MAX])) hi = Math.max(hi, row[MAX]);
  }
  return lo <= hi ? { lo, hi } : null;
}

/** The range covering both (either may be null). */
export function unionRange(a, b) {
  if (!a || !b) return a || b;
  return { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
}

/**
 * Gray level → colour-table index for one tile. A stored level g stands for min + g/255·(max − min);
 * per-layer normalisation rescales that value to the layer's range, diverging maps centre it on zero.
 */
function levelTable(stat, { map, norm, range }) {
  const table = new Uint8Array(256);
  const known = stat && Number.isFinite(stat[MIN]) && Number.isFinite(stat[MAX]);
  const layer = norm === "layer" && range;
  for (let level = 0; level < 256; level++) {
    let t = level / 255;
    if (known && (layer || map.diverging)) {
      const value = stat[MIN] + t * (stat[MAX] - stat[MIN]);
      const lo = layer ? range.lo : stat[MIN];
      const hi = layer ? range.hi : stat[MAX];
      if (map.diverging) t = 0.5 + value / (2 * (Math.max(Math.abs(lo), Math.abs(hi)) || 1));
      else t = hi > lo ? (value - lo) / (hi - lo) : 0;
    }
    table[level] = Math.round(Math.min(1, Math.max(0, t)) * 255);
  }
  return table;
}

/**
 * Colours the tiles `filters` of a decoded grid (`image` from store.js, `stats` [F][5] of its probe or null).
 * Returns a canvas the size of the grid PNG; gutters and tiles not asked for stay transparent.
 */
export function paintTiles(image, stats, layout, filters, options) {
  const { width, height, gray, nan } = image;
  const pixels = new ImageData(width, height);
  const out = pixels.data;
  const { table: colours, marker } = options.map;
  for (const filter of filters) {
    const levels = levelTable(stats?.[filter], options);
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
