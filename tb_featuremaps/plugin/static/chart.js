// A small line chart as inline SVG built with DOM calls: values over steps, a marker at the current step.
import { formatNumber, svg } from "./dom.js";

const PAD = { left: 46, right: 10, top: 18, bottom: 22 };

/**
 * `xs`: steps; `series`: [{label, values, className}]; `marker`: the current step;
 * `onPick(step)`: called with the nearest step when the chart is clicked; `tick(step)`: a step's text on the axis.
 */
export function lineChart({ xs, series, marker, width = 360, height = 150, onPick, label, tick = String }) {
  const finite = series.flatMap((line) => line.values.filter(Number.isFinite));
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
  const first = xs[0];
  const last = xs.length > 1 ? xs[xs.length - 1] : first + 1;
  const plotWidth = width - PAD.left - PAD.right;
  const plotHeight = height - PAD.top - PAD.bottom;
  const x = (step) => PAD.left + ((step - first) / (last - first)) * plotWidth;
  const y = (value) => PAD.top + (1 - (value - lo) / (hi - lo)) * plotHeight;

  const root = svg("svg", { class: "fm-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
  root.append(
    svg("title", { text: label }),
    svg("rect", { class: "fm-chart-frame", x: PAD.left, y: PAD.top, width: plotWidth, height: plotHeight }),
    svg("text", { class: "fm-chart-tick", x: PAD.left - 4, y: PAD.top + 4, "text-anchor": "end", text: formatNumber(hi) }),
    svg("text", { class: "fm-chart-tick", x: PAD.left - 4, y: PAD.top + plotHeight, "text-anchor": "end", text: formatNumber(lo) }),
    svg("text", { class: "fm-chart-tick", x: PAD.left, y: height - 6, text: tick(xs[0]) }),
    svg("text", { class: "fm-chart-tick", x: PAD.left + plotWidth, y: height - 6, "text-anchor": "end", text: tick(xs[xs.length - 1]) }),
  );
  if (marker != null) {
    root.append(svg("line", { class: "fm-chart-marker", x1: x(marker), x2: x(marker), y1: PAD.top, y2: PAD.top + plotHeight }));
  }
  let legendX = PAD.left;
  for (const line of series) {
    let path = "";
    let pen = "M";
    line.values.forEach((value, index) => {
      if (!Number.isFinite(value)) {
        pen = "M";
        return;
      }
      path += `${pen}${x(xs[index]).toFixed(1)},${y(value).toFixed(1)}`;
      pen = "L";
    });
    root.append(svg("path", { class: `fm-chart-line ${line.className}`, d: path || "M0,0" }));
    if (xs.length === 1 && Number.isFinite(line.values[0])) {
      root.append(svg("circle", { class: `fm-chart-dot ${line.className}`, cx: x(xs[0]), cy: y(line.values[0]), r: 3 }));
    }
    root.append(
      svg("line", { class: `fm-chart-line ${line.className}`, x1: legendX, x2: legendX + 14, y1: 8, y2: 8 }),
      svg("text", { class: "fm-chart-tick", x: legendX + 18, y: 12, text: line.label }),
    );
    legendX += 28 + line.label.length * 6.2;
  }
  if (onPick) {
    root.classList.add("fm-clickable");
    root.addEventListener("click", (event) => {
      const box = root.getBoundingClientRect();
      const step = first + ((((event.clientX - box.left) * width) / box.width - PAD.left) / plotWidth) * (last - first);
      onPick(xs.reduce((best, candidate) => (Math.abs(candidate - step) < Math.abs(best - step) ? candidate : best)));
    });
  }
  return root;
}
