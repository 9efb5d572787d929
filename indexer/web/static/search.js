// The search page: the form's fields live in the URL (?q=&mode=&k=&law=&as_of=), so a search can
// be linked and reloaded; the key never does.
"use strict";

const FIELDS = ["q", "mode", "k", "law", "as_of"];

function formParams(form) {
  const data = new FormData(form);
  return Object.fromEntries(FIELDS.map((f) => [f, (data.get(f) || "").trim()]));
}

async function runSearch(p) {
  const { el, api, passageUrl } = Hop;
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  document.getElementById("error").hidden = true;
  results.replaceChildren();
  if (!p.q) { status.textContent = ""; return; }
  status.textContent = "searching …";
  const body = { query: p.q, k: Number(p.k) || 10 };
  if (p.law) body.filters = { law: p.law };
  if (p.as_of) body.as_of = p.as_of;
  const hop = p.mode === "hop";
  if (!hop) body.mode = p.mode || "hybrid";
  const started = performance.now();
  const answer = await api(hop ? "/hop-search" : "/search", { method: "POST", body });
  const ms = Math.round(performance.now() - started);
  status.textContent = `${answer.hits.length} hits · generation ${answer.generation} · ${ms} ms`
    + (hop ? ` · ${answer.steps ? answer.steps.length : 0} steps` : "");
  for (const hit of answer.hits) results.append(hitRow(hit, p));
}

function hitRow(hit, p) {
  const { el, passageUrl, fmt } = Hop;
  const row = el("li", { class: "hit", "data-key": hit.key },
    el("span", { class: "score", title: "score" }, fmt(hit.score)),
    el("a", { class: "title", href: passageUrl(hit.key, { as_of: p.as_of }) }, `${hit.law} ${hit.label || hit.article}`),
    hit.cited ? el("span", { class: "badge" }, "cited") : null,
    hit.as_of ? el("span", { class: "badge" }, `as of ${hit.as_of}`) : null,
    el("p", { class: "text" }, hit.text.length > 180 ? `${hit.text.slice(0, 180)}…` : hit.text));
  if (hit.matched_question) row.append(el("p", { class: "question" }, `問：${hit.matched_question}`));
  if (hit.path) {
    if (hit.path.length === 0) {
      row.append(el("p", { class: "muted path-none" }, "entry point (no edge followed)"));
    } else {
      const steps = el("ol", { class: "path" });
      for (const s of hit.path) {
        steps.append(el("li", { class: `kind-${s.kind}` },
          `${s.from} → ${s.to} (${s.kind}${s.role ? `: ${s.role}` : ""}${s.direction === "in" ? ", backwards" : ""})`,
          s.question ? el("span", { class: "question" }, ` ${s.question}`) : null));
      }
      const path = JSON.stringify(hit.path.map((s) => ({ from: s.from, to: s.to, kind: s.kind, question: s.question || null })));
      row.append(steps, el("a", { class: "draw-path", href: passageUrl(hit.key, { as_of: p.as_of, path }) }, "Draw this path on the graph"));
    }
  }
  return row;
}

Hop.start(async () => {
  const form = document.getElementById("search");
  const params = new URLSearchParams(location.search);
  for (const f of FIELDS) if (params.has(f)) form.elements[f].value = params.get(f);
  if (!form.dataset.bound) {
    form.dataset.bound = "1";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const p = formParams(form);
      const query = new URLSearchParams(Object.entries(p).filter(([, v]) => v));
      history.replaceState(null, "", `/?${query}`);
      runSearch(p).catch((e) => Hop.showError("error", e));
    });
  }
  await runSearch(formParams(form));
});
