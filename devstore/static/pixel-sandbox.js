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
      browser: {cookie: {get: async () => "", set: async () => ""}, localStorage: storage(),
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
