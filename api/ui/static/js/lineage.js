// An adapter's lineage as an SVG graph: its ancestors, the adapter itself and the adapters
// trained from it, left to right; each node is a link to that adapter's page.

import {s} from "./dom.js";

const NODE_W = 150, NODE_H = 46, GAP_X = 60, GAP_Y = 14, PAD = 10;

function node(entry, x, y, current) {
  const label = `${entry.name} v${entry.version}`;
  const box = s("g", {class: current ? "node current" : "node", "data-adapter": entry.id},
    s("rect", {x, y, width: NODE_W, height: NODE_H, rx: 6}),
    s("text", {x: x + NODE_W / 2, y: y + 20, "text-anchor": "middle", class: "node-name"},
      label.length > 20 ? `${label.slice(0, 19)}…` : label),
    s("text", {x: x + NODE_W / 2, y: y + 36, "text-anchor": "middle", class: "node-id"},
      entry.id.slice(0, 16)));
  if (current) {
    box.setAttribute("aria-current", "page");
    return box;
  }
  return s("a", {href: `#/adapters/${entry.id}`, "aria-label": `Adapter ${label}`}, box);
}

function edge(x1, y1, x2, y2) {
  const mid = (x1 + x2) / 2;
  return s("path", {class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
                    "marker-end": "url(#arrow)"});
}

/** The graph: `adapter` (with its `lineage`, nearest first) and its `children`. */
export function lineageGraph(adapter, children) {
  const chain = [...adapter.lineage].reverse(); // the first ancestor on the left
  const rows = Math.max(children.length, 1);
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  const columns = chain.length + 1 + (children.length ? 1 : 0);
  const width = PAD * 2 + columns * NODE_W + (columns - 1) * GAP_X;
  const midY = height / 2 - NODE_H / 2;
  const parts = [];
  chain.forEach((entry, i) => {
    const x = PAD + i * (NODE_W + GAP_X);
    parts.push(node(entry, x, midY, false));
    parts.push(edge(x + NODE_W, midY + NODE_H / 2, x + NODE_W + GAP_X, midY + NODE_H / 2));
  });
  const selfX = PAD + chain.length * (NODE_W + GAP_X);
  parts.push(node(adapter, selfX, midY, true));
  children.forEach((child, i) => {
    const x = selfX + NODE_W + GAP_X;
    const y = PAD + i * (NODE_H + GAP_Y);
    parts.push(edge(selfX + NODE_W, midY + NODE_H / 2, x, y + NODE_H / 2));
    parts.push(node(child, x, y, false));
  });
  const names = [...chain.map((e) => `${e.name} v${e.version}`), `${adapter.name} v${adapter.version}`];
  const description = `Lineage: ${names.join(" → ")}` +
    (children.length ? `; trained from it: ${children.map((c) => `${c.name} v${c.version}`).join(", ")}` : "");
  return s("svg", {class: "lineage", role: "group", viewBox: `0 0 ${width} ${height}`,
                   width, height, "aria-label": description,
                   "data-nodes": chain.length + 1 + children.length},
    s("defs", {}, s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                               markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
      s("path", {d: "M0,0 L10,5 L0,10 z", class: "arrow"}))),
    s("title", {}, description),
    parts);
}
