// A neighbourhood drawn as SVG with d3's force layout. SVG rather than canvas: every drawn node is
// an element carrying data-node="<key>" (for people inspecting it, and for the browser tests).
"use strict";

const HopGraph = (() => {
  const RADIUS = { 0: 11, 1: 8, 2: 6 };
  // what a citation's source does to its target, where the citing sentence says it
  const ROLE_TEXT = { punishes: "punishes a breach of", exception: "makes an exception to", defines: "defines a term of", applies: "applies" };

  // draw(container, {nodes, edges, center}, {path, onOpen}) -> the d3 simulation
  function draw(container, data, { path = [], onOpen } = {}) {
    container.replaceChildren();
    const width = container.clientWidth || 600, height = container.clientHeight || 400;
    const nodes = data.nodes.map((n) => ({ ...n, id: n.key }));
    const byKey = new Map(nodes.map((n) => [n.key, n]));
    const links = data.edges.map((e) => ({ ...e }));
    const onPath = new Set();
    for (const s of path) {  // a hop path: its passages and steps, drawn even beyond the rings
      for (const key of [s.from, s.to]) {
        if (!byKey.has(key)) {
          const n = { key, id: key, label: key, law: "", hop: 2 };
          nodes.push(n); byKey.set(key, n);
        }
      }
      const found = links.find((l) => l.kind === s.kind && ((l.source === s.from && l.target === s.to) || (l.source === s.to && l.target === s.from)));
      if (found) found.onPath = true;
      else links.push({ source: s.from, target: s.to, kind: s.kind, question: s.question, role: s.role, onPath: true });
      onPath.add(s.from); onPath.add(s.to);
    }

    const svg = d3.select(container).append("svg").attr("viewBox", [-width / 2, -height / 2, width, height]);
    const layer = svg.append("g");
    svg.call(d3.zoom().scaleExtent([0.3, 4]).on("zoom", (event) => layer.attr("transform", event.transform)));
    const tip = d3.select(container).append("div").attr("id", "tip").attr("hidden", true);
    const show = (event, text) => {
      const [x, y] = d3.pointer(event, container);
      tip.attr("hidden", null).text(text).style("left", `${x + 12}px`).style("top", `${y + 12}px`);
    };
    const hide = () => tip.attr("hidden", true);

    const edgeText = (l) => l.kind === "question"
      ? `${l.question || ""}${l.matched_question ? ` → ${l.matched_question}` : ""}`
      : l.kind === "citation" ? `${ROLE_TEXT[l.role] || "cites"}: ${l.span || "(citation)"}` : "next/previous article";
    const edge = layer.append("g").selectAll("g").data(links).join("g");
    const line = edge.append("line")
      .attr("class", (l) => `edge ${l.kind}${l.onPath ? " on-path" : ""}`)
      .attr("data-source", (l) => l.source).attr("data-target", (l) => l.target)
      .attr("marker-end", "url(#arrow)");
    // a wide transparent twin of each line: hovering a 1.6-px line is hard, on a phone impossible
    const hit = edge.append("line").attr("class", "hit")
      .on("mouseenter", (event, l) => show(event, edgeText(l))).on("mouseleave", hide)
      .on("click", (event, l) => show(event, edgeText(l)));
    edge.append("title").text(edgeText);
    // the legal role of each citation on the hop path, written on its line
    const roleLabel = edge.filter((l) => l.onPath && l.role).append("text")
      .attr("class", (l) => `edge-role role-${l.role}`).attr("data-role", (l) => l.role)
      .attr("text-anchor", "middle").text((l) => l.role);

    // userSpaceOnUse: the arrow keeps its size on a thick (path) line
    svg.append("defs").append("marker").attr("id", "arrow").attr("viewBox", "0 -4 8 8").attr("refX", 18)
      .attr("markerUnits", "userSpaceOnUse").attr("markerWidth", 9).attr("markerHeight", 9).attr("orient", "auto")
      .append("path").attr("d", "M0,-4L8,0L0,4").attr("fill", "#889");

    const node = layer.append("g").selectAll("g").data(nodes).join("g")
      .attr("class", (n) => `node hop-${n.hop}${onPath.has(n.key) ? " on-path" : ""}`)
      .attr("data-node", (n) => n.key).attr("tabindex", 0).attr("role", "link")
      .attr("aria-label", (n) => `${n.law} ${n.label}`)
      .on("click", (event, n) => onOpen && onOpen(n.key))
      .on("keydown", (event, n) => { if (event.key === "Enter" && onOpen) onOpen(n.key); })
      .on("mouseenter", (event, n) => show(event, `${n.law} ${n.label}`)).on("mouseleave", hide);
    node.append("circle").attr("r", (n) => RADIUS[n.hop] || 6);
    node.append("text").attr("x", 10).attr("y", 4).text((n) => n.hop === 0 || nodes.length <= 25 ? shortName(n) : n.label);
    node.append("title").text((n) => `${n.law} ${n.label}`);

    const simulation = d3.forceSimulation(nodes)
      .force("link", d3.forceLink(links).id((n) => n.id).distance((l) => (l.kind === "structural" ? 40 : 80)))
      .force("charge", d3.forceManyBody().strength(-160))
      .force("radial", d3.forceRadial((n) => (n.hop || 0) * Math.min(width, height) / 5).strength(0.3))
      .on("tick", () => {
        for (const sel of [line, hit]) {
          sel.attr("x1", (l) => l.source.x).attr("y1", (l) => l.source.y)
            .attr("x2", (l) => l.target.x).attr("y2", (l) => l.target.y);
        }
        roleLabel.attr("x", (l) => (l.source.x + l.target.x) / 2).attr("y", (l) => (l.source.y + l.target.y) / 2 - 4);
        node.attr("transform", (n) => `translate(${n.x},${n.y})`);
      });
    const center = byKey.get(data.center);
    if (center) { center.fx = 0; center.fy = 0; }
    node.call(d3.drag()
      .on("start", (event, n) => { if (!event.active) simulation.alphaTarget(0.3).restart(); n.fx = n.x; n.fy = n.y; })
      .on("drag", (event, n) => { n.fx = event.x; n.fy = event.y; })
      .on("end", (event, n) => { if (!event.active) simulation.alphaTarget(0); if (n.key !== data.center) { n.fx = null; n.fy = null; } }));
    return simulation;
  }

  function shortName(n) {
    const law = n.law.length > 8 ? `${n.law.slice(0, 8)}…` : n.law;
    return `${law} ${n.label}`;
  }

  return { draw };
})();
