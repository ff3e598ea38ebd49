// devstore's stand-in for https://cdn.shopify.com/shopifycloud/app-bridge.js (no CDN here).
// Like App Bridge it exposes `shopify.idToken()` and adds `Authorization: Bearer <session token>`
// to fetch() calls to the app's own origin. Outside a frame it uses the id_token of the page URL.
(function () {
  let counter = 0;
  const waiting = new Map();
  window.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === "devstore:idToken:reply" && waiting.has(data.id)) {
      waiting.get(data.id)(data.token);
      waiting.delete(data.id);
    }
  });
  function idToken() {
    if (window.parent === window) {
      return Promise.resolve(new URLSearchParams(location.search).get("id_token") || "");
    }
    return new Promise((resolve) => {
      const id = ++counter;
      waiting.set(id, resolve);
      window.parent.postMessage({type: "devstore:idToken", id}, "*");
    });
  }
  const originalFetch = window.fetch.bind(window);
  window.fetch = async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url, location.href);
    if (url.origin === location.origin) {
      const headers = new Headers(init.headers || (typeof input !== "string" ? input.headers : undefined));
      if (!headers.has("Authorization")) headers.set("Authorization", "Bearer " + (await idToken()));
      init = {...init, headers};
    }
    return originalFetch(input, init);
  };
  const meta = document.querySelector('meta[name="shopify-api-key"]');
  window.shopify = {idToken, config: {apiKey: meta ? meta.content : ""}, devstore: true};
})();
