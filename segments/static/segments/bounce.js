// App Bridge gives a fresh session token; reload this page with it (one bounce per page load).
// A file of its own, not inline: the Content-Security-Policy allows no inline script.
(async () => {
  const url = new URL(window.location.href);
  url.searchParams.set("id_token", await window.shopify.idToken());
  window.location.replace(url.toString());
})();
