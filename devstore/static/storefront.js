// devstore's storefront page script: the cart, the consent banner, and Shopify's customer events.
// Every event the page publishes goes to each app pixel's sandbox (pixel-sandbox.js) with the shapes
// of Shopify's Web Pixels API (standard events, `Shopify.analytics.publish` for custom ones). Pixels
// load only with analytics consent and then get this page's earlier events replayed.
"use strict";
(() => {
  const boot = JSON.parse(document.getElementById("storefront-boot").textContent);
  const currency = boot.shop.paymentSettings.currencyCode;
  const history = [];
  let workers = [];
  let seq = 0;

  function stored(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
  }
  const clientId = stored("devstore_client_id", null) || crypto.randomUUID();
  localStorage.setItem("devstore_client_id", JSON.stringify(clientId));

  function consent() { return localStorage.getItem("devstore_consent"); }
  function privacy(allowed) {
    return {analyticsProcessingAllowed: allowed, marketingAllowed: false, preferencesProcessingAllowed: false,
            saleOfDataAllowed: false};
  }

  function context() {
    const l = window.location;
    return {
      document: {characterSet: document.characterSet, referrer: document.referrer, title: document.title,
                 location: {hash: l.hash, host: l.host, hostname: l.hostname, href: l.href, origin: l.origin,
                            pathname: l.pathname, port: l.port, protocol: l.protocol, search: l.search}},
      navigator: {cookieEnabled: navigator.cookieEnabled, language: navigator.language,
                  languages: [...navigator.languages], userAgent: navigator.userAgent},
      window: {innerHeight, innerWidth, outerHeight, outerWidth, origin: l.origin, pageXOffset, pageYOffset,
               screen: {height: screen.height, width: screen.width}, screenX, screenY, scrollX, scrollY,
               location: {href: l.href, origin: l.origin, pathname: l.pathname, search: l.search}},
    };
  }

  // -- the cart (this browser's) -----------------------------------------------------------------
  function cartLines() { return stored("devstore_cart", []); }
  function saveCart(lines) {
    localStorage.setItem("devstore_cart", JSON.stringify(lines));
    // The server's copy, as Shopify keys a cart by its `cart` cookie: Liquid's `cart` reads it.
    const pairs = lines.map((l) => [Number(String(l.merchandise.id).split("/").pop()), l.quantity]);
    document.cookie = `cart=${encodeURIComponent(JSON.stringify(pairs))}; path=/; SameSite=Lax`;
    document.getElementById("cart-count").textContent = lines.reduce((n, l) => n + l.quantity, 0);
  }
  function money(amount) { return {amount: Math.round(amount * 100) / 100, currencyCode: currency}; }
  function cartLine(line) {
    return {cost: {totalAmount: money(line.merchandise.price.amount * line.quantity)}, merchandise: line.merchandise,
            quantity: line.quantity};
  }
  function cart() {
    const lines = cartLines();
    const total = lines.reduce((sum, l) => sum + l.merchandise.price.amount * l.quantity, 0);
    return {id: lines.length ? `devstore-cart-${clientId.slice(0, 8)}` : null, attributes: [],
            cost: {totalAmount: money(total)}, lines: lines.map(cartLine),
            totalQuantity: lines.reduce((n, l) => n + l.quantity, 0)};
  }
  function checkout(order) {
    const c = cart();
    return {attributes: [], billingAddress: null, buyerAcceptsEmailMarketing: false, buyerAcceptsSmsMarketing: false,
            currencyCode: currency, delivery: null, discountApplications: [], discountsAmount: money(0),
            email: null, lineItems: c.lines.map((line, i) => ({
              id: String(i + 1), title: line.merchandise.product.title, quantity: line.quantity,
              variant: line.merchandise, finalLinePrice: line.cost.totalAmount, discountAllocations: [],
              properties: [], sellingPlanAllocation: null})),
            localization: {country: {isoCode: "US"}, language: {isoCode: "EN"}, market: {handle: "us", id: "1"}},
            order: order || null, phone: null, shippingAddress: null, shippingLine: null, smsMarketingPhone: null,
            subtotalPrice: c.cost.totalAmount, token: `devstore-checkout-${clientId.slice(0, 8)}`,
            totalPrice: c.cost.totalAmount, totalTax: money(0), transactions: []};
  }

  // -- events -------------------------------------------------------------------------------------
  function publish(name, data, type = "standard") {
    const event = {id: `sh-${crypto.randomUUID()}`, clientId, name, seq: seq++, timestamp: new Date().toISOString(),
                   type, context: context(), ...(type === "custom" ? {customData: data ?? null} : {data: data ?? {}})};
    history.push(event);
    for (const worker of workers) worker.postMessage({type: "event", event});
  }

  function loadPixels() {
    if (workers.length) return;
    const init = {context: context(), customerPrivacy: privacy(true),
                  data: {customer: boot.customer, cart: cart(), shop: boot.shop, purchasingCompany: null}};
    workers = boot.pixels.map((pixel) => {
      const worker = new Worker("/cdn/pixel-sandbox.js");
      worker.postMessage({type: "load", bundle: new URL(pixel.bundle, location.origin).href, init,
                          settings: pixel.settings, cookies: document.cookie});
      // browser.cookie.set runs in the top frame, as on Shopify: the page writes what the pixel asks.
      worker.onmessage = ({data}) => { if (data.type === "cookie") document.cookie = data.cookie; };
      for (const event of history) worker.postMessage({type: "event", event});   // replayed on consent
      return worker;
    });
  }

  function decide(choice) {
    localStorage.setItem("devstore_consent", choice);
    document.getElementById("consent").hidden = true;
    if (choice === "granted") loadPixels();
    else for (const worker of workers) worker.postMessage({type: "consent", customerPrivacy: privacy(false)});
  }
  document.getElementById("consent-accept").addEventListener("click", () => decide("granted"));
  document.getElementById("consent-decline").addEventListener("click", () => decide("denied"));
  window.Shopify = {analytics: {publish: (name, data) => publish(name, data, "custom")},
                    customerPrivacy: {setTrackingConsent: ({analytics}) => decide(analytics ? "granted" : "denied"),
                                      showBanner: () => { document.getElementById("consent").hidden = false; }}};

  // -- the page -------------------------------------------------------------------------------------
  function renderCart(removable) {
    const box = document.getElementById("cart-lines");
    if (!box) return;
    const lines = cartLines();
    box.innerHTML = lines.length ? "" : "<p>Your cart is empty.</p>";
    lines.forEach((line, index) => {
      const row = document.createElement("div");
      row.className = "line";
      row.innerHTML = `<span></span><span>${line.quantity} × $${line.merchandise.price.amount.toFixed(2)}</span>`;
      row.firstChild.textContent = line.merchandise.product.title;
      if (removable) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "Remove";
        remove.className = "remove";
        remove.addEventListener("click", () => {
          const all = cartLines();
          const [gone] = all.splice(index, 1);
          saveCart(all);
          publish("product_removed_from_cart", {cartLine: cartLine(gone)});
          renderCart(true);
        });
        row.append(remove);
      }
      box.append(row);
    });
  }

  saveCart(cartLines());
  publish("page_viewed", {});
  const pageEvent = boot.event;
  if (pageEvent && pageEvent.name === "cart_viewed") { publish("cart_viewed", {cart: cart()}); renderCart(true); }
  else if (pageEvent && pageEvent.name === "checkout_started") { publish("checkout_started", {checkout: checkout()}); renderCart(false); }
  else if (pageEvent) publish(pageEvent.name, pageEvent.data);

  const add = document.getElementById("add-to-cart");
  if (add) {
    add.addEventListener("click", () => {
      const variant = pageEvent.data.productVariant;
      const lines = cartLines();
      const line = lines.find((l) => l.merchandise.id === variant.id);
      if (line) line.quantity += 1; else lines.push({merchandise: variant, quantity: 1});
      saveCart(lines);
      publish("product_added_to_cart", {cartLine: cartLine({merchandise: variant, quantity: 1})});
      add.textContent = "Added";
    });
  }
  const pay = document.getElementById("pay");
  if (pay) {
    pay.addEventListener("click", async () => {
      pay.disabled = true;
      const lines = cartLines().map((l) => ({variantId: l.merchandise.id, quantity: l.quantity}));
      const code = document.getElementById("discount-code")?.value.trim();
      const answer = await fetch(`${boot.base}/checkout/complete`, {method: "POST", headers: {"Content-Type": "application/json"},
                                                                    body: JSON.stringify(code ? {lines, discountCode: code} : {lines})});
      const refused = document.getElementById("checkout-error");
      if (!answer.ok) {      // a code that does not apply: no order, the shopper is told why
        pay.disabled = false;
        const why = (await answer.json().catch(() => ({}))).error || "Checkout failed";
        if (refused) { refused.textContent = why; refused.hidden = false; }
        return;
      }
      if (refused) refused.hidden = true;
      const placed = await answer.json();
      const done = checkout({
        id: placed.orderId, customer: placed.customerId ? {id: placed.customerId, isFirstOrder: null} : null});
      if (placed.discount) {
        const off = Number(placed.discount.amount), percent = placed.discount.type !== "fixed_amount";
        done.discountApplications = [{allocationMethod: "ACROSS", targetSelection: "ALL", title: placed.discount.code,
          targetType: placed.discount.type === "shipping" ? "SHIPPING_LINE" : "LINE_ITEM", type: "DISCOUNT_CODE",
          value: percent ? {percentage: Number(placed.discount.value)} : money(Number(placed.discount.value))}];
        done.discountsAmount = money(off);
        done.totalPrice = money(done.subtotalPrice.amount - off);
      }
      publish("checkout_completed", {checkout: done});
      saveCart([]);
      document.getElementById("thanks").hidden = false;
    });
  }

  if (consent() === "granted") loadPixels();
  else if (consent() === null) document.getElementById("consent").hidden = false;
})();
