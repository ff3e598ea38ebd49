// Session tokens live about a minute: links and forms left open ask App Bridge for a fresh one
// (without App Bridge the page's own token is used, and an expired one gets the bounce page).
(function () {
  async function fresh() {
    return window.shopify && window.shopify.idToken ? window.shopify.idToken() : null;
  }
  document.addEventListener("click", async (event) => {
    const link = event.target.closest("a[data-fresh-token]");
    if (!link || !window.shopify || !window.shopify.idToken) return;
    event.preventDefault();
    const token = await Promise.resolve(fresh()).catch(() => null);
    if (!token) { window.location.assign(link.href); return; }
    const url = new URL(link.href);
    url.searchParams.set("id_token", token);
    window.location.assign(url.toString());
  });
  document.addEventListener("submit", async (event) => {
    const field = event.target.querySelector("input[name=id_token]");
    if (!field || event.target.dataset.refreshed) return;
    event.preventDefault();
    const token = await Promise.resolve(fresh()).catch(() => null);
    if (token) field.value = token;
    event.target.dataset.refreshed = "1";
    event.target.submit();
  });
})();
