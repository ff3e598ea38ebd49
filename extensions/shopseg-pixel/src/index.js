// shopseg's web pixel. Shopify runs it in a strict sandbox on the storefront and at checkout; it reads
// the standard events and the theme's own (`app:event`), keeps only what segmentation needs, and
// sends them in batches to the app's /storefront/events (segments/storefront/batch.py reads them, and
// refuses anything else). Nothing is sent without the shopper's analytics consent, and a withdrawal
// drops whatever was waiting.
import {register} from "@shopify/web-pixels-extension";

export const STANDARD_EVENTS = [
  "page_viewed", "product_viewed", "collection_viewed", "search_submitted", "product_added_to_cart",
  "product_removed_from_cart", "cart_viewed", "checkout_started", "checkout_completed",
];
const BATCH = 20;              // events per request (the app takes up to 100, 64 KB)
const WAIT_MS = 200;           // events fired together (a page and its product) share a request; the sandbox dies with the page
const MAX_URL = 2048;
const MAX_TEXT = 256;
const MAX_DATA_KEYS = 16;
const CUSTOM_NAME = /^[a-z0-9_]{1,24}:[a-z0-9_]{1,40}$/;
const DATA_KEY = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
// Ids from Shopify's objects, as plain ids (the app keeps no gid prefixes).
const CUSTOMER_GID = /^(?:gid:\/\/shopify\/Customer\/)?(\d{1,19})$/;

function text(value) {
  return value === null || value === undefined ? null : String(value).slice(0, MAX_TEXT);
}

function money(value) {
  return value && typeof value.amount === "number" && isFinite(value.amount) ? value.amount : null;
}

function variant(v) {
  const product = (v && v.product) || {};
  return {productId: text(product.id), variantId: text(v && v.id), productType: text(product.type),
          vendor: text(product.vendor), price: money(v && v.price)};
}

function customerId(value) {
  const match = CUSTOMER_GID.exec(value === null || value === undefined ? "" : String(value));
  return match ? match[1] : null;
}

// What each standard event keeps (never an address, a name, an email or a phone number).
const DATA = {
  page_viewed: () => ({}),
  product_viewed: (d) => variant(d.productVariant),
  collection_viewed: (d) => ({collectionId: text(d.collection && d.collection.id),
                              title: text(d.collection && d.collection.title)}),
  search_submitted: (d) => ({query: text(d.searchResult && d.searchResult.query),
                             results: ((d.searchResult && d.searchResult.productVariants) || []).length}),
  product_added_to_cart: (d) => cartLine(d.cartLine),
  product_removed_from_cart: (d) => cartLine(d.cartLine),
  cart_viewed: (d) => ({amount: money(d.cart && d.cart.cost && d.cart.cost.totalAmount),
                        quantity: d.cart ? d.cart.totalQuantity : null}),
  checkout_started: (d) => checkout(d.checkout),
  checkout_completed: (d) => ({...checkout(d.checkout),
                               orderId: text(d.checkout && d.checkout.order && d.checkout.order.id)}),
};

function cartLine(line) {
  return {...variant(line && line.merchandise), quantity: line ? line.quantity : null,
          amount: money(line && line.cost && line.cost.totalAmount)};
}

function checkout(c) {
  return {token: text(c && c.token), amount: money(c && c.totalPrice)};
}

// A theme's custom event carries what the theme put in it: keep plain values only, as the app does.
function customData(data) {
  const kept = {};
  for (const [key, value] of Object.entries(data || {})) {
    if (Object.keys(kept).length >= MAX_DATA_KEYS || !DATA_KEY.test(key)) continue;
    if (typeof value === "string") kept[key] = value.slice(0, MAX_TEXT);
    else if (value === null || typeof value === "boolean" || (typeof value === "number" && isFinite(value))) {
      kept[key] = value;
    }
  }
  return kept;
}

// The browser's clientId, as a first-party cookie the theme's app embed reads to ask the app proxy for
// the visitor's segments (Shopify stopped setting `_shopify_y` in 2026; clientId is now only in
// events). Set only with analytics consent, and erased when it is withdrawn.
export const CLIENT_COOKIE = "shopseg_cid";
const CLIENT_COOKIE_DAYS = 365;

export function pixel({analytics, browser, init, settings, customerPrivacy}) {
  let allowed = Boolean(init.customerPrivacy && init.customerPrivacy.analyticsProcessingAllowed);
  const shop = init.data.shop.myshopifyDomain;
  const loggedIn = customerId(init.data.customer && init.data.customer.id);
  const queue = [];
  let timer = null;
  let remembered = null;

  function remember(clientId) {
    if (clientId === remembered || !browser || !browser.cookie) return;
    remembered = clientId;
    browser.cookie.set(`${CLIENT_COOKIE}=${encodeURIComponent(clientId)}; path=/; ` +
                       `max-age=${CLIENT_COOKIE_DAYS * 86400}; samesite=lax`).catch(() => {});
  }

  function flush() {
    clearTimeout(timer);
    timer = null;
    while (allowed && queue.length) {
      const events = queue.splice(0, BATCH);
      // text/plain: no preflight; keepalive: the request outlives the page that sent it.
      fetch(settings.ingestUrl, {
        method: "POST", keepalive: true, headers: {"Content-Type": "text/plain"},
        body: JSON.stringify({key: settings.ingestKey, shop, analytics: true, events}),
      }).catch(() => {});   // a lost batch is lost: the pixel never retries into a shopper's page
    }
  }

  function send(event, data, customer) {
    if (!allowed) return;
    remember(event.clientId);
    const location = (event.context && event.context.document && event.context.document.location) || {};
    queue.push({
      id: String(event.id).slice(0, 64), name: event.name, clientId: event.clientId, timestamp: event.timestamp,
      seq: event.seq, url: String(location.href || "").slice(0, MAX_URL),
      referrer: String((event.context && event.context.document && event.context.document.referrer) || "")
        .slice(0, MAX_URL),
      customerId: customer || loggedIn, data,
    });
    if (queue.length >= BATCH || event.name === "checkout_completed") flush();
    else if (timer === null) timer = setTimeout(flush, WAIT_MS);
  }

  customerPrivacy.subscribe("visitorConsentCollected", (event) => {
    allowed = Boolean(event.customerPrivacy && event.customerPrivacy.analyticsProcessingAllowed);
    if (!allowed) {                      // withdrawn: what waited is never sent, the cookie goes
      queue.length = 0;
      if (remembered !== null && browser && browser.cookie) {
        browser.cookie.set(`${CLIENT_COOKIE}=; path=/; max-age=0; samesite=lax`).catch(() => {});
      }
      remembered = null;
    }
  });
  for (const name of STANDARD_EVENTS) {
    analytics.subscribe(name, (event) => {
      const data = event.data || {};
      const buyer = name === "checkout_completed"
        ? customerId(data.checkout && data.checkout.order && data.checkout.order.customer &&
                     data.checkout.order.customer.id)
        : null;
      send(event, DATA[name](data), buyer);
    });
  }
  analytics.subscribe("all_custom_events", (event) => {
    if (CUSTOM_NAME.test(event.name)) send(event, customData(event.customData), null);
  });
}

register(pixel);
