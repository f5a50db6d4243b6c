// Where a grid's tiles go on screen: scaled up to use the pane's width, nearest-neighbour, never too small to read.

const GAP = 6; // CSS pixels between tiles, room for the selection outline
const MIN_SIDE = 16; // CSS pixels: the shortest a tile side is drawn (1x1 maps, 1-D strips)
const CHROME = 330; // CSS pixels of the window the controls, captions and legend take above and below a grid
const MIN_HEIGHT = 200;
const NEAR = 0.95; // tile scales this close to the largest count as equal

/** `css` rounded down to whole device pixels (at least one), so every tile starts and ends on a pixel edge. */
function snap(css) {
  const ratio = window.devicePixelRatio || 1;
  return Math.max(1, Math.floor(css * ratio)) / ratio;
}

/**
 * The layout of `count` tiles of `layout.tile_width` × `tile_height` pixels in `width` CSS pixels: the column count
 * giving the largest tiles that fit the width and, when they can be at least MIN_SIDE, the window's height
 * (`windowHeight`); the aspect ratio is kept, except that a side shorter than MIN_SIDE (a 1 × L strip) is stretched.
 * Returns {columns, rows, cell: {width, height}, gap, width, height} in CSS pixels.
 */
export function fitGrid(count, layout, width, windowHeight) {
  const { tile_width: tileWidth, tile_height: tileHeight } = layout;
  const height = Math.max(MIN_HEIGHT, windowHeight - CHROME);
  const least = MIN_SIDE / Math.min(tileWidth, tileHeight);
  const candidates = [];
  for (let columns = 1; columns <= count; columns++) {
    const rows = Math.ceil(count / columns);
    const across = (width - GAP * (columns + 1)) / (columns * tileWidth);
    const down = (height - GAP * (rows + 1)) / (rows * tileHeight);
    const scale = Math.min(across, Math.max(down, least));
    const empty = rows * columns - count;
    if (columns > 1 && columns * MIN_SIDE + GAP * (columns + 1) > width) break; // even the smallest tiles overflow
    candidates.push({ columns, rows, scale, empty });
  }
  // Tiles within a few percent of the largest look the same: of those, the fullest last row, then the widest grid.
  const largest = Math.max(...candidates.map((candidate) => candidate.scale));
  const best = candidates
    .filter((candidate) => candidate.scale >= largest * NEAR)
    .reduce((a, b) => (b.empty < a.empty || (b.empty === a.empty && b.columns * b.scale > a.columns * a.scale) ? b : a));
  const fits = (side) => Math.min(width - 2 * GAP, Math.max(side, MIN_SIDE));
  const cell = { width: snap(fits(tileWidth * best.scale)), height: snap(Math.max(tileHeight * best.scale, MIN_SIDE)) };
  return {
    columns: best.columns,
    rows: best.rows,
    cell,
    gap: GAP,
    width: best.columns * (cell.width + GAP) + GAP,
    height: best.rows * (cell.height + GAP) + GAP,
  };
}
