// A passage: its text, pseudo-queries, edges, versions with diffs, and its neighbourhood drawn.
// ?as_of=YYYY-MM-DD shows the article in force then; ?path=[{from,to,kind,question}] draws the
// steps of a hop search that reached it; ?hops=1|2 the rings drawn.
"use strict";

function pageKey() {
  return decodeURIComponent(location.pathname.slice("/ui/passages/".length));
}

function renderPassage(p) {
  const { el } = Hop;
  document.title = `hoprag-index · ${p.law} ${p.label}`;
  document.getElementById("title").textContent = `${p.law} ${p.label}`;
  if (p.valid_from) {
    document.getElementById("title").append(el("span", { class: "badge" }, `in force ${p.valid_from} – ${p.valid_to || "now"}`));
  }
  document.getElementById("chapters").textContent = (p.chapters || []).join(" › ");
  const paragraphs = p.paragraphs && p.paragraphs.length ? p.paragraphs : p.text.split("\n");
  document.getElementById("text").replaceChildren(...paragraphs.map((t) => el("p", {}, t)));
  document.getElementById("passage").hidden = false;
  const qs = p.questions || { incoming: [], outgoing: [] };
  for (const dir of ["incoming", "outgoing"]) {
    const items = qs[dir].length ? qs[dir].map((q) => el("li", {}, q)) : [el("li", { class: "muted" }, "none")];
    document.getElementById(dir).replaceChildren(...items);
  }
}

function renderEdges(graph, key, asOf) {
  const { el, passageUrl, fmt } = Hop;
  const info = new Map(graph.nodes.map((n) => [n.key, n]));
  const rows = graph.edges.filter((e) => e.source === key || e.target === key).map((e) => {
    const out = e.source === key, other = info.get(out ? e.target : e.source);
    const note = e.kind === "question" ? `${e.question || ""}${e.matched_question ? ` → ${e.matched_question}` : ""}`
      : e.kind === "citation" ? `${e.span || ""}${e.role ? ` (${e.role})` : ""}` : "";
    return el("tr", { "data-key": other.key },
      el("td", {}, out ? "out" : "in"), el("td", { class: `kind-${e.kind}` }, e.kind),
      el("td", {}, el("a", { href: passageUrl(other.key, { as_of: asOf }) }, `${other.law} ${other.label}`)),
      el("td", {}, note), el("td", { class: "num" }, fmt(e.score)));
  });
  document.querySelector("#edges tbody").replaceChildren(...rows);
}

function renderHistory(versions) {
  const { el } = Hop;
  const box = document.getElementById("history");
  if (!versions.length) { box.replaceChildren(el("p", { class: "muted" }, "No versions recorded.")); return; }
  box.replaceChildren(...versions.slice().reverse().map((v) => {
    const body = v.changes
      ? el("p", { class: "diff" }, v.changes.map(([op, text]) => (op === "=" ? text : el(op === "-" ? "del" : "ins", {}, text))))
      : el("p", {}, v.text);
    return el("div", { class: "card version" },
      el("strong", {}, `${v.valid_from} – ${v.valid_to || "now"}`),
      v.repealed ? el("span", { class: "badge" }, "repealed") : null,
      el("span", { class: "muted" }, ` ${v.law} ${v.label}`), body);
  }));
}

// The steps of a ?path= link that are edges of this index, with the index's own questions: a link
// can only point at a path, never put keys or text of its maker's choosing on the page.
async function realSteps(linked, graph, asOf) {
  const steps = [];
  for (const s of Array.isArray(linked) ? linked.slice(0, 16) : []) {
    if (!s || typeof s.from !== "string" || typeof s.to !== "string" || typeof s.kind !== "string") continue;
    const same = (a, b) => (a.source === s.from && a.target === s.to) || (a.source === s.to && a.target === s.from);
    let edge = graph.edges.find((e) => e.kind === s.kind && same(e, s));
    if (!edge) {
      try {
        const q = `?direction=both&kinds=${encodeURIComponent(s.kind)}${asOf ? `&as_of=${encodeURIComponent(asOf)}` : ""}`;
        const { neighbors } = await Hop.api(`/passages/${encodeURIComponent(s.from)}/neighbors${q}`);
        const n = neighbors.find((x) => x.key === s.to && x.kind === s.kind);
        if (n) edge = { kind: n.kind, question: n.question, role: n.role };
      } catch (_) { edge = undefined; }  // an unknown key, a kind that is no kind: not drawn
    }
    if (edge) steps.push({ from: s.from, to: s.to, kind: edge.kind, question: edge.question || "", role: edge.role || "" });
  }
  return steps;
}

Hop.start(async () => {
  const { api } = Hop;
  const key = pageKey();
  const params = new URLSearchParams(location.search);
  // a link's values are anyone's: a date is a date (else none), and goes into API URLs encoded
  const asOf = /^\d{4}-\d{2}-\d{2}$/.test(params.get("as_of") || "") ? params.get("as_of") : "";
  const hops = params.get("hops") === "1" ? 1 : 2;
  let linked = [];
  try { linked = JSON.parse(params.get("path") || "[]"); } catch (_) { linked = []; }
  const form = document.getElementById("asof");
  form.elements.as_of.value = asOf;
  form.elements.hops.value = String(hops);
  form.onsubmit = (event) => {
    event.preventDefault();
    location.href = Hop.passageUrl(key, { as_of: form.elements.as_of.value, hops: form.elements.hops.value });
  };
  const when = asOf ? `?as_of=${encodeURIComponent(asOf)}` : "";
  const ref = encodeURIComponent(key);
  const [passage, graph] = await Promise.all([
    api(`/passages/${ref}${when}`),
    api(`/passages/${ref}/graph?hops=${hops}${asOf ? `&as_of=${encodeURIComponent(asOf)}` : ""}`),
  ]);
  const path = await realSteps(linked, graph, asOf);
  renderPassage(passage);
  HopGraph.draw(document.getElementById("graph"), graph, {
    path, onOpen: (k) => { if (k !== key) location.href = Hop.passageUrl(k, { as_of: asOf, hops }); },
  });
  document.getElementById("graph").dataset.nodes = String(graph.nodes.length);
  document.getElementById("graph-note").textContent =
    `${graph.nodes.length} articles, ${graph.edges.length} edges within ${hops} hop${hops > 1 ? "s" : ""}`
    + (graph.truncated ? " (the nearest and strongest; more exist)" : "") + (path.length ? ` · hop path of ${path.length} step${path.length > 1 ? "s" : ""} in orange` : "");
  renderEdges(graph, key, asOf);
  try {
    renderHistory((await api(`/passages/${ref}/history`)).versions);
  } catch (e) {
    if (e instanceof Hop.ApiError && e.status === 404) renderHistory([]);
    else throw e;
  }
});
