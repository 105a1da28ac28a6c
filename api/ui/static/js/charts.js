// Line charts of a job's metrics by step, drawn with the vendored uPlot as points arrive.

import {h} from "./dom.js";

const COLOURS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#862e9c"];

/**
 * A chart of `series` (metric keys of a `metrics` event) against `step`. `add(event)` takes
 * one event's data; the container's data-points attribute counts the steps drawn.
 */
export class MetricChart {
  constructor(title, series) {
    this.series = series;
    this.steps = [];
    this.values = series.map(() => []);
    this.plot = null;
    this.pending = false;
    this.canvas = h("div", {class: "chart-canvas"});
    this.empty = h("p", {class: "muted chart-empty"}, "No points yet.");
    this.element = h("figure", {class: "chart", "data-points": 0, "aria-label": title},
      h("figcaption", {}, title), this.empty, this.canvas);
  }

  add(data) {
    if (typeof data.step !== "number") return;
    if (!this.series.some((key) => typeof data[key] === "number")) return;
    const last = this.steps.length ? this.steps[this.steps.length - 1] : -Infinity;
    if (data.step <= last) {
      // A retried attempt resumed from a checkpoint: its steps replace the later ones.
      const keep = this.steps.findIndex((step) => step >= data.step);
      this.steps.length = keep;
      this.values.forEach((values) => { values.length = keep; });
    }
    this.steps.push(data.step);
    this.series.forEach((key, i) => {
      this.values[i].push(typeof data[key] === "number" ? data[key] : null);
    });
    this.schedule();
  }

  schedule() {
    // Points arriving together are drawn together, at most every 100 ms.
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.draw(); }, 100);
  }

  width() {
    return Math.max(this.element.clientWidth - 8, 280);
  }

  draw() {
    const data = [this.steps, ...this.values];
    this.element.dataset.points = String(this.steps.length);
    this.empty.hidden = this.steps.length > 0;
    if (!window.uPlot || !this.element.isConnected) return;
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.plot = new window.uPlot({
      width: this.width(),
      height: 220,
      scales: {x: {time: false}},
      axes: [{label: "step"}, {size: 64}],
      series: [
        {label: "step"},
        ...this.series.map((key, i) => ({
          label: key, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
          points: {show: key.startsWith("val_")},
        })),
      ],
      legend: {live: true},
    }, data, this.canvas);
  }

  resize() {
    this.plot?.setSize({width: this.width(), height: 220});
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
  }
}
