// The selected filter in detail: enlarged, across steps, its mean over steps, for every probe, probes ranked. In the
// "Looks for" view: its strongest pool inputs at this step (patches, labels, the top input's picture) and a film strip
// of its strongest patch at every logged step (Zeiler & Fergus 2014, Fig. 4).
import * as api from "./api.js";
import { lineChart } from "./chart.js";
import { colormap } from "./colormaps.js";
import { el, formatNumber, sample, sizeCanvas, stepText, unitPlural } from "./dom.js";
import { patchCanvas, patchText, patchZoom, poolIndex, ranks } from "./looks.js";
import { classProfile } from "./profile.js";
import { displayRange, drawTile, paintTiles } from "./render.js";
import { filterParts, frameSpec, layoutOf, probeMatters } from "./selection.js";
import { selectivityOffered } from "./selectivity.js";
import { version } from "./store.js";

const FILM_FRAMES = 36; // every step up to this many (six rows of the detail view's thumbs), else this many evenly spread
const STRONGEST_FRAMES = 240; // the strongest patch's film strip shows every step up to this many (then evenly spread)
const FACTS = ["min", "max", "mean", "std"]; // stats fields, by name
const MIN_SIDE = 16; // CSS pixels: the shortest side of an enlarged tile (a 1 × L strip)

/** A canvas showing one coloured tile, scaled to fit `size` CSS pixels (a short side stretched to a readable size). */
function tileCanvas(frame, layout, filter, options, size) {
  const painted = paintTiles(frame.image, frame.ranges, layout, [filter], { map: options.map, range: displayRange([frame], options.norm) });
  const zoom = size / Math.max(layout.tile_width, layout.tile_height);
  const least = Math.min(size, MIN_SIDE);
  const width = Math.max(least, Math.round(layout.tile_width * zoom));
  const height = Math.max(least, Math.round(layout.tile_height * zoom));
  const canvas = el("canvas", { class: "fm-tile" });
  drawTile(sizeCanvas(canvas, width, height), painted, layout, filter, 0, 0, width, height);
  return canvas;
}

function section(title) {
  const heading = el("h3", { text: title });
  const body = el("div", { class: "fm-detail-body" });
  return { heading, body, root: el("section", { class: "fm-detail-section" }, heading, body) };
}

/** The input's [height, width] a `pool` listing entry's pictures were drawn from (block-averaged to 64 pixels a side, docs/format.md), or null. */
function poolInputSize(pool) {
  const shape = pool.input_shape || [];
  const drawn = (side) => Math.floor(side / Math.ceil(side / 64));
  for (const [height, width] of [shape.slice(0, 2), shape.slice(1, 3)]) {
    if (Number.isInteger(height) && Number.isInteger(width) && drawn(height) === pool.height && drawn(width) === pool.width) return [height, width];
  }
  return null;
}

/** A pool input's picture with the box of the receptive field its patch `record` came from (when the patch is one). */
function fieldPicture(src, alt, pool, layout, record) {
  const size = 84;
  const [pictureHeight, pictureWidth] = [pool.height || 1, pool.width || 1];
  const scale = size / Math.max(pictureHeight, pictureWidth);
  const frame = el("div", { class: "fm-field-picture", style: `width: ${pictureWidth * scale}px; height: ${pictureHeight * scale}px` });
  frame.append(el("img", { src, alt, draggable: "false" }));
  const input = poolInputSize(pool);
  const field = layout.extra?.receptive_field?.size; // its real extent, which the patch shows clipped to the input
  const patch = layout.extra?.patch === "receptive field" ? (field?.length === 2 ? field : layout.extra.patch_size) : null;
  if (input && patch && Number.isFinite(record.top) && Number.isFinite(record.left)) {
    const [height, width] = input;
    const percent = (value, side) => `${(100 * value) / side}%`;
    const larger = patch[0] > height || patch[1] > width ? " (larger than the input: its box reaches past the picture)" : "";
    frame.append(
      el("div", {
        class: "fm-field-box",
        title: `the ${patch.join("×")}-pixel receptive field at row ${record.top}, column ${record.left}${larger}`,
        style: `top: ${percent(record.top, height)}; left: ${percent(record.left, width)}; height: ${percent(patch[0], height)}; width: ${percent(patch[1], width)}`,
      }),
    );
  }
  return frame;
}

export class Detail {
  /** `onPick(patch)` changes the selection (step, probe); `onClose()` closes the view. */
  constructor(store, { onPick, onClose }) {
    this.store = store;
    this.onPick = onPick;
    this.token = 0;
    this.title = el("h2", { id: "fm-detail-title" });
    this.subtitle = el("p", { class: "fm-detail-sub" });
    this.big = section("At this step");
    this.film = section("Across steps");
    this.chart = section("Mean activation over steps");
    this.probes = section("Every probe");
    this.ranking = section("Probes ranked by mean activation");
    this.profile = section("Class profile over training");
    this.root = el(
      "aside",
      { class: "fm-detail", hidden: true, "aria-labelledby": "fm-detail-title" },
      el(
        "div",
        { class: "fm-detail-head" },
        el("div", {}, this.title, this.subtitle),
        el("button", { type: "button", class: "fm-icon fm-close", "aria-label": "Close filter details", title: "Close (Esc)", text: "×", onclick: onClose }),
      ),
      this.big.root,
      this.film.root,
      this.chart.root,
      this.probes.root,
      this.ranking.root,
      this.profile.root,
    );
  }

  hide() {
    this.token++;
    this.root.hidden = true;
  }

  /**
   * Shows the selected filter of `shown` (selection.js settle()). Each section keeps its old content until its new
   * data is in.
   */
  update(shown) {
    const token = ++this.token;
    const current = () => token === this.token;
    const { state, layer } = shown;
    const { filter, probe, step } = state;
    const ctx = {
      ...shown,
      run: state.run,
      hasPictures: Boolean(shown.run.probes),
      pool: shown.run.pool,
      filter,
      probe,
      step,
      unit: layer.step_unit,
      map: colormap(state.cmap),
    };
    this.root.hidden = false;
    this.root.dataset.filter = String(ctx.filter);
    this.title.textContent = `Filter ${ctx.filter}`;
    const looks = ctx.kind === "strongest";
    const what = probeMatters(ctx.kind) ? `probe ${ctx.probe} (label ${ctx.labels[ctx.probe] ?? ctx.probe})` : looks ? "strongest pool inputs" : "kernel";
    this.subtitle.textContent = `${layer.layer} · ${stepText(ctx.unit, ctx.step)} · ${what}`;
    const fill = (part, build) =>
      build().then(
        (nodes) => current() && part.body.replaceChildren(...nodes),
        (error) => current() && part.body.replaceChildren(el("p", { class: "fm-pane-note", text: `Couldn't load this (${error.message}).` })),
      );
    const parts = filterParts(layer, ctx.filter);
    this.big.heading.textContent = looks ? "Strongest pool inputs at this step" : "At this step";
    this.film.heading.textContent = looks ? "Its strongest patch at every step" : "Across steps";
    fill(this.big, () => (looks ? this.strongestNow(ctx) : this.enlarged(ctx)));
    fill(this.film, () => (looks ? this.strongestFilm(ctx) : this.filmStrip(ctx)));
    this.chart.root.hidden = !parts.stats;
    this.ranking.root.hidden = !parts.stats;
    this.probes.root.hidden = !parts.activations;
    this.chart.heading.textContent = `Mean activation over ${unitPlural(ctx.unit)}`;
    if (parts.stats) fill(this.chart, () => this.meanChart(ctx));
    this.probes.heading.textContent = probeMatters(ctx.kind) ? "Every probe" : "Activations for every probe";
    if (parts.activations) fill(this.probes, () => this.everyProbe(ctx));
    this.ranking.heading.textContent = `Probes ranked by mean activation at ${stepText(ctx.unit, ctx.step)}`;
    if (parts.stats) fill(this.ranking, () => this.ranked(ctx));
    const profiled = parts.activations && selectivityOffered(shown.run, layer);
    this.profile.root.hidden = !profiled;
    if (profiled) fill(this.profile, () => classProfile(this.store, { run: ctx.run, layer, filter: ctx.filter, step: ctx.step, onPick: this.onPick }));
  }

  frame(ctx, kind, step, probe) {
    return this.store.frame(frameSpec(ctx.run, ctx.layer, kind, step, probe));
  }

  async enlarged(ctx) {
    const frame = await this.frame(ctx, ctx.kind, ctx.step, ctx.probe);
    const canvas = tileCanvas(frame, ctx.layout, ctx.filter, ctx, 168);
    const row = frame.stats?.[ctx.filter];
    const facts = row
      ? el("dl", { class: "fm-facts" }, ...FACTS.flatMap((name) => [el("dt", { text: name }), el("dd", { text: formatNumber(row[name]) })]))
      : el("p", { class: "fm-pane-note", text: !probeMatters(ctx.kind) ? "Kernel averaged over input channels, scaled to its own min … max." : "" });
    return [el("div", { class: "fm-big" }, canvas, facts)];
  }

  /** The filter's top-k patches at the step with their labels and activations, and the top input's whole picture. */
  async strongestNow(ctx) {
    const layout = ctx.layout;
    const [frame, topk] = await Promise.all([this.frame(ctx, "strongest", ctx.step, 0), this.store.topk(ctx.run, ctx.layer.layer, ctx.step)]);
    const records = topk.records[ctx.filter] || [];
    const zoom = patchZoom(layout, 56);
    const patches = el(
      "div",
      { class: "fm-patches" },
      ...Array.from({ length: ranks(layout) }, (_, rank) => {
        const text = caption(records[rank]);
        return el(
          "figure",
          { title: patchText(records[rank]) },
          patchCanvas(frame.image, layout, ctx.filter, rank, zoom),
          el("figcaption", { text, title: text }),
        );
      }),
    );
    const legend = el("p", { class: "fm-patches-legend", text: "Under each patch: its pool input's label (#index without one) · the filter's activation" });
    const top = records[0];
    const index = poolIndex(top);
    const strongest = `Its strongest input: ${patchText(top)}`;
    const picture =
      index != null && ctx.pool
        ? el(
            "div",
            { class: "fm-top-input" },
            fieldPicture(api.poolURL(ctx.run, index), `Pool input ${index}`, ctx.pool, layout, top),
            el("p", { text: strongest, title: strongest }),
          )
        : null;
    return [picture, patches, legend].filter(Boolean);
  }

  /** The filter's rank-0 patch at every logged step (evenly spread beyond STRONGEST_FRAMES), prefetched in batches. */
  async strongestFilm(ctx) {
    const steps = sample(ctx.steps, STRONGEST_FRAMES);
    const specs = steps.map((step) => frameSpec(ctx.run, ctx.layer, "strongest", step, 0));
    await this.store.cacheGrids(specs);
    const frames = await Promise.all(specs.map((spec) => this.store.frame(spec)));
    const zoom = patchZoom(ctx.layout, 32);
    return [
      thumbStrip(
        steps.map((step, index) => ({
          pressed: step === ctx.step,
          label: stepText(ctx.unit, step),
          canvas: patchCanvas(frames[index].image, ctx.layout, ctx.filter, 0, zoom),
          caption: stepText(ctx.unit, step),
          pick: () => this.onPick({ step }),
        })),
      ),
    ];
  }

  async filmStrip(ctx) {
    const steps = sample(ctx.steps, FILM_FRAMES);
    const frames = await Promise.all(steps.map((step) => this.frame(ctx, ctx.kind, step, ctx.probe)));
    const note = steps.length < ctx.steps.length ? el("p", { class: "fm-pane-note", text: `${steps.length} of ${ctx.steps.length} steps, evenly spread` }) : null;
    return [
      note,
      thumbStrip(
        steps.map((step, index) => ({
          pressed: step === ctx.step,
          label: stepText(ctx.unit, step),
          canvas: tileCanvas(frames[index], ctx.layout, ctx.filter, ctx, 40),
          caption: stepText(ctx.unit, step),
          pick: () => this.onPick({ step }),
        })),
      ),
    ].filter(Boolean);
  }

  async meanChart(ctx) {
    const answer = await this.store.filterStats(ctx.run, ctx.layer.layer, ctx.filter, version(ctx.layer));
    const means = answer.records.map((probes) => probes.map((row) => row.mean).filter(Number.isFinite));
    const series = [
      { label: "all probes", className: "fm-line-all", values: means.map((list) => (list.length ? list.reduce((a, b) => a + b, 0) / list.length : NaN)) },
      { label: `probe ${ctx.probe}`, className: "fm-line-probe", values: answer.records.map((probes) => probes[ctx.probe]?.mean ?? NaN) },
    ];
    if (!series[0].values.some(Number.isFinite)) return [el("p", { class: "fm-pane-note", text: "No finite activations were logged for this filter." })];
    const label = `Mean activation of filter ${ctx.filter} over ${unitPlural(ctx.unit)}`;
    const tick = (step) => stepText(ctx.unit, step);
    return [lineChart({ xs: answer.steps, series, marker: ctx.step, onPick: (step) => this.onPick({ step }), label, tick, height: 130 })];
  }

  async everyProbe(ctx) {
    const frames = await Promise.all(ctx.labels.map((_, probe) => this.frame(ctx, "activations", ctx.step, probe)));
    return [
      thumbStrip(
        frames.map((frame, probe) => ({
          pressed: probe === ctx.probe,
          label: `Probe ${probe}, label ${ctx.labels[probe]}`,
          canvas: tileCanvas(frame, layoutOf(ctx.layer, "activations"), ctx.filter, ctx, 58),
          caption: String(ctx.labels[probe]),
          pick: () => this.onPick({ probe }),
        })),
      ),
    ];
  }

  async ranked(ctx) {
    const answer = await this.store.stats(ctx.run, ctx.layer.layer, ctx.step);
    const rows = answer.records.map((filters, probe) => ({ probe, mean: filters[ctx.filter]?.mean ?? NaN }));
    rows.sort((a, b) => (Number.isFinite(b.mean) ? b.mean : -Infinity) - (Number.isFinite(a.mean) ? a.mean : -Infinity));
    const top = Math.max(...rows.map((row) => Math.abs(row.mean)).filter(Number.isFinite), 0) || 1;
    return [
      el(
        "ol",
        { class: "fm-ranking" },
        ...rows.map(({ probe, mean }) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", class: "fm-rank", "aria-pressed": String(probe === ctx.probe), onclick: () => this.onPick({ probe }) },
              ctx.hasPictures ? el("img", { src: api.probeURL(ctx.run, probe), alt: "" }) : null,
              el("span", { class: "fm-rank-label", text: String(ctx.labels[probe] ?? probe) }),
              el("span", { class: "fm-rank-bar" }, el("span", { style: `width: ${Math.max(0, (100 * (Number.isFinite(mean) ? mean : 0)) / top)}%` })),
              el("span", { class: "fm-rank-value", text: formatNumber(mean) }),
            ),
          ),
        ),
      ),
    ];
  }
}

/** A patch's caption: its input's label (else its index) and activation. */
function caption(record) {
  if (poolIndex(record) == null) return "–";
  return `${record.label ?? `#${record.input}`} · ${formatNumber(record.value)}`;
}

/** A row of thumbnail buttons, each a tile canvas with a caption; the pressed one is the current choice. */
function thumbStrip(thumbs) {
  return el(
    "div",
    { class: "fm-strip" },
    ...thumbs.map(({ pressed, label, canvas, caption, pick }) =>
      el("button", { type: "button", class: "fm-thumb", "aria-pressed": String(pressed), "aria-label": label, onclick: pick }, canvas, el("span", { text: caption })),
    ),
  );
}
