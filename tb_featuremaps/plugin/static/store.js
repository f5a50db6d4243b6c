// Cached data: decoded grid images (LRU by bytes) and route answers (LRU by entries), plus prefetching.
import * as api from "./api.js";
import { layerRange, statRecords, tileRanges } from "./levels.js";
import { LRU } from "./lru.js";

const IMAGE_BYTES = 192 * 1024 * 1024;
const ANSWERS = 400;
const GRIDS_MAX = 64; // steps one `grids` request may ask for (docs/http-api.md)
const PREFETCH_BATCH = 16; // frames prefetched together: their grids in one `grids` request per layer and probe
const READ_AHEAD = 2; // read-ahead tasks (each at most one request) in flight at once

/** Decodes a grid PNG to its gray levels plus a NaN mask (alpha 0), exactly as stored (no colour management). */
async function decodeGrid(blob) {
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const { width, height } = bitmap;
  const context = new OffscreenCanvas(width, height).getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  const gray = new Uint8Array(width * height);
  let nan = null;
  for (let index = 0; index < gray.length; index++) {
    gray[index] = rgba[index * 4];
    if (rgba[index * 4 + 3] < 128) (nan ||= new Uint8Array(gray.length))[index] = 1;
  }
  return { width, height, gray, nan };
}

/** Decodes a `strongest` sheet PNG (pool pictures: gray or RGB) to a bitmap, drawn as it is. */
async function decodeSheet(blob) {
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  return { width: bitmap.width, height: bitmap.height, bitmap };
}

/** The decoder of a grid kind's PNGs: gray levels for the value grids, a bitmap for the patch sheets. */
const decoder = (kind) => (kind === "strongest" ? decodeSheet : decodeGrid);

const imageBytes = (image) => (image.bitmap ? image.width * image.height * 4 : image.gray.length * 2);

/** Changes when `layer` (a runs entry) logs new steps: the key that refetches cached answers spanning steps. */
export const version = (layer) => `${layer.step_count}:${layer.last_step}`;

export class Store {
  constructor() {
    this.images = new LRU(IMAGE_BYTES);
    this.answers = new LRU(ANSWERS);
    this.wallTimes = new Map(); // [run, layer, kind, step] -> wall time, from the steps answers
    this.queue = [];
    this.pumping = false;
    this.ahead = []; // read-ahead tasks not started yet, first first
    this.aheadRunning = 0;
  }

  answer(key, load) {
    return this.answers.get(JSON.stringify(key), load);
  }

  // `version` (the layer's step count and last step) makes answers that grow with training refetch.
  steps(run, layer, kind, version) {
    return this.answer(["steps", run, layer, kind, version], async () => {
      const answer = await api.steps(run, layer, kind);
      answer.steps.forEach((step, index) => this.wallTimes.set(JSON.stringify([run, layer, kind, step]), answer.wall_times[index]));
      return answer;
    });
  }

  /** Records a step's wall time known before its steps answer (the runs listing's last step), which then confirms it. */
  knowWallTime(run, layer, kind, step, time) {
    this.wallTimes.set(JSON.stringify([run, layer, kind, step]), time);
  }

  // A step's wall time in the keys of per-step answers: a run trained again in the same directory gets new ones.
  wallTime(run, layer, kind, step) {
    return this.wallTimes.get(JSON.stringify([run, layer, kind, step]));
  }

  activity(run, layer, version) {
    return this.answer(["activity", run, layer, version], () => api.activity(run, layer));
  }

  change(run, layer, version) {
    return this.answer(["change", run, layer, version], () => api.change(run, layer));
  }

  /** Each filter's strongest pool inputs at one step (api.topk), keyed by the sheet's wall time like its image. */
  topk(run, layer, step) {
    const time = this.wallTime(run, layer, "strongest", step);
    return this.answer(["topk", run, layer, step, time], () => api.topk(run, layer, step, time));
  }

  /** One filter's stats answer plus `records`: [S][P] of {min, max, mean, std, nonfinite}, by the answer's field names. */
  filterStats(run, layer, filter, version) {
    return this.answer(["filter_stats", run, layer, filter, version], async () => {
      const answer = await api.filterStats(run, layer, filter);
      return { ...answer, records: statRecords(answer) };
    });
  }

  /** One step's stats answer plus `records`: [P][F] of {min, max, mean, std, nonfinite}, by the answer's field names. */
  stats(run, layer, step) {
    const time = this.wallTime(run, layer, "activations", step);
    return this.answer(["stats", run, layer, step, time], async () => {
      const answer = await api.stats(run, layer, step);
      return { ...answer, records: statRecords(answer) };
    });
  }

  imageKey(run, layer, kind, step, probe) {
    return JSON.stringify([run, layer, kind, step, probe, this.wallTime(run, layer, kind, step)]);
  }

  image(run, layer, kind, step, probe) {
    const load = async () => decoder(kind)(await api.grid(run, layer, kind, step, probe, this.wallTime(run, layer, kind, step)));
    return this.images.get(this.imageKey(run, layer, kind, step, probe), load, imageBytes);
  }

  /**
   * Caches the grids of `specs` not cached yet, with one `grids` request per layer and probe: the server reads
   * their blobs side by side, so TensorBoard's Rust data server makes the batch wait once, not once per grid.
   * A failed batch leaves nothing behind; image() then asks for each grid alone.
   */
  async cacheGrids(specs) {
    const groups = new Map();
    for (const { run, layer, kind, step, probe } of specs) {
      if (this.images.entries.has(this.imageKey(run, layer, kind, step, probe))) continue;
      const group = JSON.stringify([run, layer, kind, probe]);
      groups.set(group, [...(groups.get(group) || []), step]);
    }
    const chunks = [...groups].flatMap(([group, steps]) =>
      Array.from({ length: Math.ceil(steps.length / GRIDS_MAX) }, (_, index) => [group, steps.slice(index * GRIDS_MAX, (index + 1) * GRIDS_MAX)]),
    );
    const batches = chunks.map(([group, steps]) => {
      const [run, layer, kind, probe] = JSON.parse(group);
      const answer = api.grids(run, layer, kind, steps, probe, this.wallTime(run, layer, kind, steps[0]));
      steps.forEach((step, index) => {
        this.images.get(this.imageKey(run, layer, kind, step, probe), async () => decoder(kind)((await answer)[index]), imageBytes);
      });
      return answer;
    });
    await Promise.allSettled(batches);
  }

  /**
   * One probe's grid at one step (a selection.js frameSpec): `stats` its [F] records, `ranges` its tiles' [F] {lo, hi} by the layer's
   * `normalization`, `layerRange` the step's {lo, hi} over every probe and filter; all null for kernels and
   * layers without stats.
   */
  async frame({ run, layer, kind, step, probe, withStats, normalization }) {
    const stats = withStats ? this.stats(run, layer, step) : null;
    const [image, answer] = await Promise.all([this.image(run, layer, kind, step, probe), stats]);
    const records = answer?.records[probe] ? answer.records : null;
    return {
      image,
      stats: records ? records[probe] : null,
      ranges: records ? tileRanges(normalization, records)?.[probe] || null : null,
      layerRange: records ? layerRange(records) : null,
    };
  }

  /** Loads these frames in the background, a few at a time; a new call replaces the pending list. */
  prefetch(specs) {
    this.queue = specs;
    if (!this.pumping) this.pump();
  }

  async pump() {
    this.pumping = true;
    while (this.queue.length) {
      const batch = this.queue.splice(0, PREFETCH_BATCH);
      await this.cacheGrids(batch);
      await Promise.allSettled(batch.map((spec) => this.frame(spec)));
    }
    this.pumping = false;
    this.drainAhead();
  }

  /**
   * Runs `tasks` (functions that each make at most one request, through the caches) in the background, first first,
   * at most READ_AHEAD at once and only while no frames are being prefetched; a new call replaces the tasks not started.
   * The user's own requests never wait for them (they bypass this queue) and their failures are left to those requests.
   */
  readAhead(tasks) {
    this.ahead = [...tasks];
    this.drainAhead();
  }

  drainAhead() {
    while (!this.pumping && this.aheadRunning < READ_AHEAD && this.ahead.length) {
      const task = this.ahead.shift();
      this.aheadRunning++;
      Promise.resolve()
        .then(task)
        .catch(() => {})
        .finally(() => {
          this.aheadRunning--;
          this.drainAhead();
        });
    }
  }
}
