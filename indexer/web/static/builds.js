// Start a build and watch it: the job is polled twice a second until it is committed or failed.
"use strict";

const REPORT_FIELDS = ["generation", "passages", "added", "changed", "removed", "unchanged", "embedded",
  "cache_hits", "llm_calls", "llm_failures", "seconds"];

function renderJob(job) {
  const { el, int } = Hop;
  const box = document.getElementById("job");
  box.hidden = false;
  box.dataset.status = job.status;
  box.querySelector(".id").textContent = job.id;
  box.querySelector(".status").textContent = job.status;
  box.querySelector(".stage").textContent = job.stage ? `· ${job.stage}` : "";
  const bar = box.querySelector("progress");
  const done = job.status === "committed";
  if (done) { bar.max = 1; bar.value = 1; } else if (job.total) { bar.max = job.total; bar.value = job.done; } else bar.removeAttribute("value");
  box.querySelector(".counts").textContent = job.total ? `${int(job.done)} / ${int(job.total)}` : "";
  const report = box.querySelector(".report");
  report.replaceChildren();
  if (job.report) {
    for (const f of REPORT_FIELDS) {
      if (job.report[f] !== undefined) report.append(el("div", { class: "tile" }, el("dt", {}, f), el("dd", {}, String(job.report[f]))));
    }
  }
  if (job.error) report.append(el("div", { class: "tile" }, el("dt", {}, "error"), el("dd", { class: "error" }, job.error)));
}

function renderJobs(jobs) {
  const { el } = Hop;
  document.querySelector("#jobs tbody").replaceChildren(...jobs.map((j) => el("tr", { "data-job": j.id },
    el("td", {}, j.id), el("td", {}, j.status), el("td", {}, j.library), el("td", {}, j.created_at),
    el("td", { class: "num" }, j.report ? String(j.report.generation) : ""))));
}

async function watch(id) {
  const button = document.querySelector("#build button");
  button.disabled = true;
  try {
    for (;;) {
      const job = await Hop.api(`/builds/${encodeURIComponent(id)}`);
      renderJob(job);
      if (job.status === "committed" || job.status === "failed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    button.disabled = false;
  }
  renderJobs((await Hop.api("/builds")).jobs);
}

Hop.start(async () => {
  const { api, el } = Hop;
  const form = document.getElementById("build");
  const state = await api("/builds");
  const select = form.elements.library;
  select.replaceChildren(...state.libraries.map((lib) => el("option", { value: lib }, lib)));
  if (!state.libraries.length) {
    Hop.showError("error", "No library folders under this service's roots: start it with `hoprag serve --library-root DIR`.");
  }
  renderJobs(state.jobs);
  form.onsubmit = async (event) => {
    event.preventDefault();
    document.getElementById("error").hidden = true;
    const body = { library: select.value };
    for (const f of ["embedder", "llm", "as_of"]) if (form.elements[f].value.trim()) body[f] = form.elements[f].value.trim();
    try {
      const job = await api("/builds", { method: "POST", body });
      renderJob(job);
      await watch(job.id);
    } catch (e) { Hop.showError("error", e); }
  };
  const active = state.jobs.find((j) => j.status === "queued" || j.status === "running");
  if (active) await watch(active.id);
});
