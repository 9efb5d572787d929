// What every page shares: the API client (with the key the user typed), the login prompt, and a
// tiny DOM builder. Text always goes in as textContent, never as HTML: statutes and questions are
// data, and a question an LLM wrote must not become markup.
"use strict";

const Hop = (() => {
  const KEY = "hoprag-api-key"; // sessionStorage: this tab only, never a URL or a cookie
  let reload = null;

  class ApiError extends Error {
    constructor(status, detail) {
      super(typeof detail === "string" ? detail : JSON.stringify(detail));
      this.status = status;
    }
  }
  class LoginNeeded extends Error {}

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      showLogin(key ? "That key was refused." : "");
      throw new LoginNeeded("this service needs its API key");
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = { detail: response.statusText }; }
    if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
    return data;
  }

  function showLogin(message) {
    const box = document.getElementById("login");
    box.querySelector(".error").textContent = message || "";
    box.hidden = false;
    box.querySelector("input[name=key]").focus();
  }

  function setUpLogin() {
    const box = document.getElementById("login");
    box.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = box.querySelector("input[name=key]");
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = "";
      box.hidden = true;
      if (reload) reload();
    });
  }

  // el("a", {href: "/x", class: "title"}, "text", child, ...): attributes set as attributes
  // (data-*, aria-*), text children as text nodes
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function passageUrl(key, params = {}) {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
    return `/ui/passages/${encodeURIComponent(key)}${query ? `?${query}` : ""}`;
  }

  function showError(target, error) {
    if (error instanceof LoginNeeded) return;
    const box = typeof target === "string" ? document.getElementById(target) : target;
    box.textContent = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error);
    box.hidden = false;
  }

  // the header and the login prompt, the same on every page (the shells hold only their <main>)
  function frame() {
    const page = document.body.dataset.page;
    const link = (href, name, text) =>
      el("a", { href, "data-page": name, "aria-current": name === page ? "page" : null }, text);
    document.body.prepend(el("header", {}, el("nav", {},
      el("a", { href: "/", class: "brand" }, "hoprag-index"),
      link("/", "search", "搜尋 Search"), link("/ui/stats", "stats", "統計 Stats"),
      link("/ui/builds", "builds", "建置 Builds"))));
    document.body.append(el("div", { id: "login", hidden: true, role: "dialog", "aria-modal": "true" },
      el("form", {},
        el("strong", {}, "API key"),
        el("span", { class: "muted" }, "This service answers only with its key. It stays in this tab."),
        el("input", { type: "password", name: "key", autocomplete: "current-password", required: true,
                      "aria-label": "API key" }),
        el("span", { class: "error" }),
        el("button", { type: "submit" }, "Sign in"))));
  }

  // start(load): run the page's loader now and again after a key is entered
  function start(load) {
    frame();
    setUpLogin();
    reload = () => load().catch((e) => showError("error", e));
    reload();
  }

  const fmt = (x, digits = 3) => (typeof x === "number" ? x.toFixed(digits) : "");
  const int = (x) => (typeof x === "number" ? x.toLocaleString("en-US") : "–");

  return { api, el, start, passageUrl, showError, fmt, int, ApiError, LoginNeeded };
})();
