// devstore's strict sandbox for one app pixel, as Shopify runs app pixels: a Web Worker (no DOM,
// no window) whose only way in is `shopify.extend('WebPixel::Render', fn)` and the extension API.
"use strict";
let render = null;
const subscribers = {};
const consentSubscribers = [];
self.shopify = {extend(point, fn) { if (point === "WebPixel::Render") render = fn; }};

function storage() {
  const items = new Map();
  return {getItem: async (k) => items.get(k) ?? null, setItem: async (k, v) => { items.set(k, String(v)); },
          removeItem: async (k) => { items.delete(k); }, key: async (i) => [...items.keys()][i] ?? null,
          length: async () => items.size, clear: async () => { items.clear(); }};
}

// browser.cookie: get(name) reads the page's cookies as they were at load; set("name=value; …") or
// set(name, value) has the page write the cookie (the top frame), and answers the cookie string.
function cookies(snapshot) {
  const jar = new Map(snapshot.split(/;\s*/).filter(Boolean).map((c) => [c.split("=")[0], c.slice(c.indexOf("=") + 1)]));
  return {
    get: async (name) => (name === undefined ? [...jar].map(([k, v]) => `${k}=${v}`).join("; ") : jar.get(name) ?? ""),
    set: async (cookieOrName, value) => {
      const cookie = value === undefined ? String(cookieOrName) : `${cookieOrName}=${value}`;
      const [name, ...rest] = cookie.split(";")[0].split("=");
      jar.set(name.trim(), rest.join("="));
      self.postMessage({type: "cookie", cookie});
      return cookie;
    },
  };
}

function deliver(event) {
  const groups = ["all_events", event.type === "standard" ? "all_standard_events" : "all_custom_events"];
  for (const name of [event.name, ...groups]) {
    for (const callback of subscribers[name] || []) {
      try { callback(event); } catch (error) { console.error("pixel error", error); }
    }
  }
}

self.onmessage = ({data: message}) => {
  if (message.type === "load") {
    importScripts(message.bundle);
    render({
      analytics: {subscribe(name, callback) {
        (subscribers[name] ||= []).push(callback);
        return () => true;
      }},
      init: message.init,
      settings: message.settings,
      browser: {cookie: cookies(message.cookies || ""), localStorage: storage(),
                sessionStorage: storage(), sendBeacon: async () => false},
      customerPrivacy: {subscribe(name, callback) {
        if (name === "visitorConsentCollected") consentSubscribers.push(callback);
      }},
      _pixelInfo: {},
    });
  } else if (message.type === "event") {
    deliver(message.event);
  } else if (message.type === "consent") {
    for (const callback of consentSubscribers) callback({customerPrivacy: message.customerPrivacy});
  }
};
