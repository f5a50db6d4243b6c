// Colour tables: 17 stops each, interpolated to 256 entries. Viridis, magma and inferno
// after matplotlib's (CC0); the diverging map after ColorBrewer's RdBu (blue < 0 < red).

const STOPS = {
  gray: "000000 ffffff",
  viridis:
    "440154 48186a 472d7b 424086 3b528b 33638d 2c728e 26828e 21918c 1fa088 28ae80 3fbc73 5ec962 84d44b addc30 d8e219 fde725",
  magma:
    "000004 0a0822 1d1147 36106b 51127c 6a1c81 832681 9c2e7f b73779 d0416f e75263 f56b5c fc8961 fea772 fec488 fde2a3 fcfdbf",
  inferno:
    "000004 0b0724 210c4a 3d0965 57106e 71196e 8a226a a32c61 bc3754 d24644 e45a31 f1731d f98e09 fcac11 f9cb35 f2ea69 fcffa4",
  rdbu: "053061 175290 2a71b2 3f8ec0 6bacd1 9bc9e0 c2ddec e0ecf3 f7f6f6 fbe5d8 fbccb4 f5aa89 e48066 d05548 ba2832 930e26 67001f",
};

function hexToRgb(hex) {
  return [0, 2, 4].map((offset) => parseInt(hex.slice(offset, offset + 2), 16));
}

/** 256 × RGB, linear between the stops. */
function buildTable(stops) {
  const colours = stops.split(" ").map(hexToRgb);
  const table = new Uint8Array(256 * 3);
  for (let index = 0; index < 256; index++) {
    const position = (index / 255) * (colours.length - 1);
    const low = Math.min(Math.floor(position), colours.length - 2);
    const fraction = position - low;
    for (let channel = 0; channel < 3; channel++) {
      const value = colours[low][channel] * (1 - fraction) + colours[low + 1][channel] * fraction;
      table[index * 3 + channel] = Math.round(value);
    }
  }
  return table;
}

/** `marker` is the colour of NaN/Inf pixels, chosen to stand out from the map's own colours. */
export const COLORMAPS = [
  { id: "gray", label: "Gray", marker: [255, 0, 200] },
  { id: "viridis", label: "Viridis", marker: [255, 0, 200] },
  { id: "magma", label: "Magma", marker: [0, 220, 255] },
  { id: "inferno", label: "Inferno", marker: [0, 220, 255] },
  { id: "rdbu", label: "RdBu (diverging, 0 = white)", marker: [0, 190, 0], diverging: true },
].map((map) => ({ ...map, table: buildTable(STOPS[map.id]) }));

export function colormap(id) {
  return COLORMAPS.find((map) => map.id === id) || COLORMAPS[0];
}

/** A CSS colour from an [r, g, b] triple. */
export function cssColour([red, green, blue]) {
  return `rgb(${red} ${green} ${blue})`;
}

/** The CSS colour of table entry `index` (0..255). */
export function tableColour(map, index) {
  return cssColour(map.table.subarray(index * 3, index * 3 + 3));
}
