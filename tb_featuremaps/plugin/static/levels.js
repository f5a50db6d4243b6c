// The gray-level rule (metadata.tile_ranges / levels_to_values): a stored level g stands for lo + g/255·(hi − lo).
// "per_filter": lo / hi are the filter's own stats min / max for that probe; "per_layer": the finite extremes over
// every probe and filter of the step. Every part of the panel that turns levels into values goes through here.

/**
 * A stats or filter_stats answer's `values` ([P][F][fields] or [S][P][fields]) as records keyed by the answer's
 * `fields` names, same nesting: the panel's only reading of a stats row, so a field added to the format changes nothing.
 */
export function statRecords({ fields, values }) {
  return values.map((filters) => filters.map((row) => Object.fromEntries(fields.map((name, index) => [name, row[index]]))));
}

/** {lo, hi}: the finite minimum of every `min` and maximum of every `max` in [P][F] records (NaN when none). */
export function layerRange(records) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const filters of records) {
    for (const { min, max } of filters) {
      if (Number.isFinite(min)) lo = Math.min(lo, min);
      if (Number.isFinite(max)) hi = Math.max(hi, max);
    }
  }
  return { lo: lo === Infinity ? NaN : lo, hi: hi === -Infinity ? NaN : hi };
}

/** What levels 0 and 255 stand for, [P][F] of {lo, hi}; null for a normalization this panel does not know. */
export function tileRanges(normalization, records) {
  if (normalization === "per_layer") {
    const range = layerRange(records);
    return records.map((filters) => filters.map(() => range));
  }
  if (normalization !== "per_filter") return null;
  return records.map((filters) => filters.map(({ min, max }) => ({ lo: min, hi: max })));
}

/** Whether a range is known (both ends finite). */
export const known = (range) => Boolean(range) && Number.isFinite(range.lo) && Number.isFinite(range.hi);

/** The value gray level `level` (0..255) stands for in a tile of range {lo, hi}; an empty range is lo everywhere. */
export function levelValue(level, { lo, hi }) {
  return hi > lo ? lo + (level / 255) * (hi - lo) : lo;
}

/** The range covering both (either may be null or unknown). */
export function unionRange(a, b) {
  if (!known(a) || !known(b)) return known(a) ? a : known(b) ? b : null;
  return { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
}
