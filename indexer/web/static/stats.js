// Counts, the embedder and LLM, and two charts drawn as plain SVG bars (no chart library needed
// for bars): edges per law stacked by kind, and the degree histogram.
"use strict";

const KINDS = ["question", "citation", "structural"];
const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// rows: [{label, parts: [{kind, value}]}] -> horizontal stacked bars
function barChart(rows, { labelWidth = 170, row = 20, width = 720 } = {}) {
  const height = rows.length * row + 10;
  const max = Math.max(1, ...rows.map((r) => r.parts.reduce((s, p) => s + p.value, 0)));
  // the drawing is as wide as its box, so that its text keeps the page's size
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  rows.forEach((r, i) => {
    const y = i * row + 4;
    svg.append(svgEl("text", { x: labelWidth - 6, y: y + row / 2 + 2, "text-anchor": "end" }, r.label));
    let x = labelWidth;
    for (const p of r.parts) {
      const w = (p.value / max) * (width - labelWidth - 60);
      const rect = svgEl("rect", { x, y, width: Math.max(0, w), height: row - 6, class: p.kind });
      rect.append(svgEl("title", {}, `${r.label}: ${p.value} ${p.kind === "bar" ? "" : p.kind}`.trim()));
      svg.append(rect);
      x += w;
    }
    svg.append(svgEl("text", { x: x + 4, y: y + row / 2 + 2 }, String(r.parts.reduce((s, p) => s + p.value, 0))));
  });
  return svg;
}

Hop.start(async () => {
  const { api, el, int } = Hop;
  const [stats, graph] = await Promise.all([api("/stats"), api("/stats/graph")]);
  const edges = stats.edges || {};
  const tiles = [["laws", stats.laws], ["passages", stats.passages], ["vectors", stats.vectors],
    ["incoming questions", stats.pseudo_queries.incoming], ["outgoing questions", stats.pseudo_queries.outgoing],
    ...KINDS.map((k) => [`${k} edges`, edges[k] || 0]), ["generation", stats.generation]];
  document.getElementById("tiles").replaceChildren(...tiles.map(([name, value]) =>
    el("div", { class: "tile", "data-stat": name }, el("b", {}, int(value)), el("span", { class: "muted" }, name))));
  const emb = stats.embedder ? `${stats.embedder.name} (${stats.embedder.dim}-d)` : "none yet";
  const last = stats.last_build;
  document.getElementById("about").replaceChildren(
    el("p", {}, el("strong", {}, "Embedder: "), emb),
    el("p", {}, el("strong", {}, "LLM: "), stats.llm || "none (no pseudo-queries)"),
    el("p", {}, el("strong", {}, "Library: "), stats.library || "–", stats.as_of ? ` (as of ${stats.as_of})` : ""),
    el("p", {}, el("strong", {}, "Last build: "), last ? `generation ${last.generation}, ${last.passages} passages, ${last.embedded} texts embedded in ${Number(last.seconds).toFixed(1)} s` : "none"));
  const laws = graph.laws.slice(0, 40);
  const perLaw = document.getElementById("per-law"), degrees = document.getElementById("degrees");
  const inner = (box) => Math.max(280, box.clientWidth - 34);  // the card's padding
  perLaw.replaceChildren(laws.length ? barChart(laws.map((l) => ({
    label: l.law.length > 12 ? `${l.law.slice(0, 12)}…` : l.law,
    parts: KINDS.map((k) => ({ kind: k, value: l.edges[k] || 0 })),
  })), { width: inner(perLaw) }) : el("p", { class: "muted" }, "No edges yet."));
  degrees.replaceChildren(barChart(graph.degree_histogram.map((d) => ({
    label: `degree ${d.degree}`, parts: [{ kind: "bar", value: d.passages }],
  })), { labelWidth: 110, width: inner(degrees) }));
  document.querySelector("#builds tbody").replaceChildren(...graph.builds.map((b) => el("tr", {},
    el("td", { class: "num" }, String(b.generation)), el("td", {}, b.status), el("td", {}, b.finished_at || ""),
    el("td", { class: "num" }, String(b.seconds)), el("td", { class: "num" }, b.embedded ?? ""), el("td", {}, b.library))));
});
