// Shared by every embedded page: links that carry a fresh session token, JSON API calls with the
// API's error shape, inline field errors from `problems` paths, and live regions refreshed in place.
(function () {
  "use strict";

  async function idToken() {
    if (window.shopify && window.shopify.idToken) return window.shopify.idToken();
    return new URLSearchParams(location.search).get("id_token") || "";
  }

  // A page's own URL with a fresh token: links work without a bounce through App Bridge's reload.
  async function withToken(href) {
    const url = new URL(href, location.href);
    url.searchParams.set("id_token", await idToken());
    return url;
  }

  document.addEventListener("click", async (event) => {
    const link = event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    if (link.getAttribute("href").startsWith("#") || link.hasAttribute("download")) return;   // in-page, or a file
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith("/admin/") || link.target) return;
    event.preventDefault();
    location.assign((await withToken(url)).toString());
  });
  // GET forms (member search) go through the same path.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if ((form.method || "get").toLowerCase() !== "get" || form.dataset.api) return;
    event.preventDefault();
    const url = new URL(form.action || location.href, location.href);
    url.search = new URLSearchParams(new FormData(form)).toString();
    location.assign((await withToken(url)).toString());
  });

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `The request failed (HTTP ${status}).`);
      this.status = status;
      this.code = error.code || "error";
      this.problems = error.problems || [];
    }
  }

  // fetch() to our origin carries `Authorization: Bearer <session token>` (App Bridge adds it).
  async function api(method, path, body) {
    const init = {method, headers: {Accept: "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, {error: {message: "shopseg could not be reached. Check your connection and try again."}});
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function showError(message) {
    const banner = document.getElementById("api-error");
    if (!banner) return;
    banner.querySelector("[data-message]").textContent = message;
    banner.hidden = false;
  }

  function clearError() {
    const banner = document.getElementById("api-error");
    if (banner) banner.hidden = true;
  }

  // Problems name JSON paths ("channels[1]", "campaign_ideas[0]"); a field answers for its path
  // and everything under it through data-path.
  function showProblems(form, problems) {
    clearProblems(form);
    const unplaced = [];
    let first = null;
    for (const problem of problems) {
      const root = String(problem.path || "").split(/[.[]/)[0];
      const field = form.querySelector(`[data-path="${CSS.escape(root)}"]`);
      const slot = field && form.querySelector(`[data-error-for="${CSS.escape(root)}"]`);
      if (!slot) { unplaced.push(`${problem.path}: ${problem.message}`); continue; }
      const index = /^[^[]+\[(\d+)\]/.exec(String(problem.path));
      const label = index && field.dataset.itemLabel ? `${field.dataset.itemLabel} ${Number(index[1]) + 1}: ` : "";
      const text = label + problem.message;
      slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
      slot.hidden = false;
      field.setAttribute("aria-invalid", "true");
      first = first || field;
    }
    if (unplaced.length) showError(unplaced.join("; "));
    if (first) first.focus();
  }

  function clearProblems(form) {
    form.querySelectorAll("[data-error-for]").forEach((slot) => { slot.textContent = ""; slot.hidden = true; });
    form.querySelectorAll("[aria-invalid]").forEach((field) => field.removeAttribute("aria-invalid"));
    clearError();
  }

  // Replace every [data-live] region with its counterpart in a fresh copy: progress moves without a
  // reload (no flicker, focus and scroll kept). A region names the fragment it refreshes from
  // (data-live="/admin/_live/home"), fetched with the session token in Authorization as API calls
  // are; an empty data-live refreshes from this page's own URL with a fresh token. Never from the URL
  // Shopify opened the app with: its HMAC covers id_token, so a swapped token makes it a 400.
  // Stops once nothing is running.
  async function liveCopy(source) {
    const headers = {Accept: "text/html"};
    let url;
    if (source) {
      url = new URL(source, location.href);
      headers.Authorization = `Bearer ${await idToken()}`;
    } else {
      url = await withToken(location.href);
    }
    const response = await fetch(url.toString(), {headers});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return new DOMParser().parseFromString(await response.text(), "text/html");
  }

  function pollLive(intervalMs) {
    const running = () => document.querySelector("[data-live][data-running='true']");
    if (!running()) return;
    let failing = false;
    const timer = setInterval(async () => {
      try {
        const sources = new Set([...document.querySelectorAll("[data-live]")].map((region) => region.dataset.live));
        for (const source of sources) {
          const fresh = await liveCopy(source);
          document.querySelectorAll("[data-live]").forEach((region) => {
            if (region.dataset.live !== source) return;
            const next = fresh.getElementById(region.id);
            if (next) region.replaceWith(document.importNode(next, true));
          });
        }
        if (failing) clearError();
        failing = false;
      } catch (err) {
        failing = true;
        showError(`Progress could not be refreshed (${err.message}); it continues in the background.`);
      }
      if (!running()) clearInterval(timer);
    }, intervalMs);
  }

  window.shopseg = {api, ApiError, showError, clearError, showProblems, clearProblems, pollLive, withToken, idToken};
  pollLive(3000);
})();
