// The plugin's HTTP routes (docs/http-api.md), called with URLs relative to the iframe's <base>.

/** A route that answered with an error status (0: not reached); the message is the status and the server's reason. */
class RouteError extends Error {
  constructor(route, status, reason) {
    super(status ? `${status} ${reason}`.trim() : reason);
    this.route = route;
    this.status = status;
  }
}

/** The relative URL of `route` with its query parameters (null values left out). */
function routeURL(route, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value != null) query.set(key, String(value));
  const text = query.toString();
  return text ? `./${route}?${text}` : `./${route}`;
}

/** fetch() that turns network failures and error statuses into a RouteError with the server's short reason. */
export async function request(route, params) {
  let response;
  try {
    response = await fetch(routeURL(route, params));
  } catch {
    throw new RouteError(route, 0, "TensorBoard is not reachable");
  }
  if (!response.ok) {
    const plain = (response.headers.get("content-type") || "").startsWith("text/plain");
    const reason = plain ? (await response.text()).trim().slice(0, 200) : response.statusText;
    throw new RouteError(route, response.status, reason);
  }
  return response;
}

async function json(route, params) {
  return (await request(route, params)).json();
}

// Respond() writes NaN and ±Inf as strings; only numeric arrays are converted back.
const SPECIAL = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

function numbers(value) {
  if (Array.isArray(value)) return value.map(numbers);
  return typeof value === "string" && value in SPECIAL ? SPECIAL[value] : value;
}

export const runs = () => json("runs");

export const steps = (run, layer, kind) => json("steps", { run, layer, kind });

export async function stats(run, layer, step) {
  const answer = await json("stats", { run, layer, step });
  return { ...answer, values: numbers(answer.values) };
}

export async function filterStats(run, layer, filter) {
  const answer = await json("filter_stats", { run, layer, filter });
  return { ...answer, values: numbers(answer.values) };
}

export async function activity(run, layer) {
  const answer = await json("activity", { run, layer });
  return { ...answer, mean: numbers(answer.mean) };
}

/** One probe's grid PNG as a Blob; `time` (the step's wall time, ignored by the server) keeps a rewritten run's PNGs out of the HTTP cache. */
export async function grid(run, layer, kind, step, probe, time) {
  return (await request("grid", { run, layer, step, probe, kind, t: time })).blob();
}

/**
 * One probe's grid PNGs at several `steps` (at most 64) in one `grids` answer, as Blobs in the order of `steps`;
 * `time` (ignored by the server) keeps a rewritten run's answers out of the HTTP cache.
 */
export async function grids(run, layer, kind, steps, probe, time) {
  const response = await request("grids", { run, layer, kind, probe, steps: steps.join(","), t: time });
  const lengths = (response.headers.get("X-Grid-Lengths") || "").split(",").map(Number);
  const body = await response.arrayBuffer();
  if (lengths.length !== steps.length || lengths.reduce((sum, length) => sum + length, 0) !== body.byteLength) {
    throw new RouteError("grids", response.status, "the answer's X-Grid-Lengths do not match its body");
  }
  let offset = 0;
  return lengths.map((length) => new Blob([body.slice(offset, (offset += length))], { type: "image/png" }));
}

export const probeURL = (run, index) => routeURL("probe", { run, index });

/** Each filter's strongest pool inputs at `step`: the answer plus `records` [F][k] of {input, value, row, col, top, left, label}. */
export async function topk(run, layer, step, time) {
  const answer = await json("topk", { run, layer, step, t: time });
  const values = numbers(answer.values);
  const records = values.map((ranks, filter) =>
    ranks.map((row, rank) => ({ ...Object.fromEntries(answer.fields.map((name, index) => [name, row[index]])), label: answer.labels[filter]?.[rank] ?? null })),
  );
  return { ...answer, values, records };
}

/** Each filter's change since the previous step at every step (`values` [S][F][fields]) and the fraction still changing. */
export async function change(run, layer) {
  const answer = await json("change", { run, layer });
  return { ...answer, values: numbers(answer.values) };
}

export const poolURL = (run, index) => routeURL("pool", { run, index });

/** Every layer's linear CKA of each step to its latest and its settled step (null: not settled) at `threshold`. */
export async function convergence(run, threshold) {
  const answer = await json("convergence", { run, threshold });
  return { ...answer, layers: answer.layers.map((layer) => ({ ...layer, cka: numbers(layer.cka) })) };
}

/** One layer's step × step linear CKA map (`values` [S][S], at most 400 steps, `subsampled` when evenly spread). */
export async function similarity(run, layer) {
  const answer = await json("similarity", { run, layer });
  return { ...answer, values: numbers(answer.values) };
}

/** Each filter's class means ([F][C]), preferred class (an index into `classes`), selectivity index and top-k overlap at `step`. */
export async function selectivity(run, layer, step) {
  const answer = await json("selectivity", { run, layer, step });
  return { ...answer, means: numbers(answer.means), index: numbers(answer.index), overlap: numbers(answer.overlap) };
}

/** One filter's class means ([S][C]), preferred class, selectivity index and top-k overlap at every step. */
export async function filterSelectivity(run, layer, filter) {
  const answer = await json("filter_selectivity", { run, layer, filter });
  return { ...answer, means: numbers(answer.means), index: numbers(answer.index), overlap: numbers(answer.overlap) };
}
