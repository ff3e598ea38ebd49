// shopseg app embed: shows each shopseg block's member or default variant to a logged-out visitor,
// from the segments the app knows for this browser (through the app proxy, same origin), and
// publishes the shopper's segments as window.shopseg and a `shopseg:segments` event.
(function () {
  'use strict';

  var TIMEOUT_MS = 1500; // past this the default shows, as shopseg.css does without this script
  var CACHE_MS = 15000; // the proxy's own `Cache-Control: private, max-age=15`
  var CACHE_KEY = 'shopseg:segments';
  var CLIENT_ID = /^[A-Za-z0-9_.-]{1,64}$/; // what the proxy accepts as Shopify's clientId
  var script = document.currentScript;

  function normal(tag) {
    return String(tag).trim().toLowerCase();
  }

  // A logged-in customer's tags, written by the embed's Liquid; null for a visitor.
  function customerTags() {
    var el = document.getElementById('shopseg-customer-tags');
    if (!el) return null;
    try {
      var tags = JSON.parse(el.textContent);
      return Array.isArray(tags) ? tags : [];
    } catch (e) {
      return [];
    }
  }

  // Shopify's clientId for this browser, which shopseg's web pixel keeps in a first-party cookie once
  // the shopper allows analytics (Shopify's own `_shopify_y` is no longer set since 2026).
  function clientId() {
    var match = document.cookie.match(/(?:^|;\s*)shopseg_cid=([^;]+)/);
    var id = match ? decodeURIComponent(match[1]) : '';
    return CLIENT_ID.test(id) ? id : '';
  }

  function cached(id) {
    try {
      var hit = JSON.parse(sessionStorage.getItem(CACHE_KEY));
      if (hit && hit.id === id && Date.now() - hit.at < CACHE_MS && Array.isArray(hit.segments)) return hit.segments;
    } catch (e) {} // storage blocked or garbled: ask again
    return null;
  }

  function remember(id, segments) {
    try {
      sessionStorage.setItem(CACHE_KEY, JSON.stringify({ id: id, at: Date.now(), segments: segments }));
    } catch (e) {} // storage blocked or full: no cache
  }

  // Only a same-origin path: the merchant's setting must not send the visitor's id elsewhere.
  function proxyPath() {
    var path = (script && script.getAttribute('data-shopseg-proxy')) || '/apps/shopseg';
    return /^\/[^/\\]/.test(path) ? path.replace(/\/+$/, '') : '/apps/shopseg';
  }

  // The visitor's segments, [] when unknown, failing or slower than TIMEOUT_MS.
  function visitorSegments() {
    var id = clientId();
    if (!id) return Promise.resolve([]);
    var hit = cached(id);
    if (hit) return Promise.resolve(hit);
    var abort = typeof AbortController === 'function' ? new AbortController() : null;
    var timeout = new Promise(function (resolve) {
      setTimeout(function () {
        if (abort) abort.abort();
        resolve([]);
      }, TIMEOUT_MS);
    });
    var answer = fetch(proxyPath() + '/segments?client_id=' + encodeURIComponent(id), {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      signal: abort ? abort.signal : undefined,
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        var segments = body && Array.isArray(body.segments) ? body.segments.filter(function (s) {
          return typeof s === 'string';
        }) : null;
        if (!segments) return [];
        remember(id, segments);
        return segments;
      })
      .catch(function () {
        return []; // offline, aborted, not JSON: the default shows
      });
    return Promise.race([answer, timeout]);
  }

  function reveal(segments) {
    var have = {};
    segments.forEach(function (s) {
      have[normal(s)] = true;
    });
    var blocks = document.querySelectorAll('.shopseg-block[hidden]');
    Array.prototype.forEach.call(blocks, function (block) {
      // shopseg.css already showed the default (the page was slower than its 1.5 s): never flip it.
      var style = window.getComputedStyle(block);
      var shown = style.display !== 'none' && style.visibility === 'visible';
      var member = !shown && (block.getAttribute('data-shopseg-segments') || '').split(',').some(function (tag) {
        return have[normal(tag)] === true;
      });
      var variants = block.querySelectorAll('[data-shopseg-variant]');
      Array.prototype.forEach.call(variants, function (variant) {
        if (variant.parentNode !== block) return; // a nested block decides its own
        variant.hidden = variant.getAttribute('data-shopseg-variant') !== (member ? 'member' : 'default');
      });
      block.hidden = false;
    });
  }

  // The ad campaign this visit came from: utm_campaign on the landing page, kept for the session so
  // later pages still match it. Lower case, as the blocks write their campaigns.
  var CAMPAIGN_KEY = 'shopseg:campaign';
  function campaign() {
    var value = '';
    try {
      value = new URLSearchParams(window.location.search).get('utm_campaign') || '';
    } catch (e) {} // no URLSearchParams: only the remembered campaign
    value = value.trim().toLowerCase().slice(0, 100);
    try {
      if (value) sessionStorage.setItem(CAMPAIGN_KEY, value);
      else value = sessionStorage.getItem(CAMPAIGN_KEY) || '';
    } catch (e) {} // storage blocked: this page's campaign only
    return value;
  }

  // An ad-driven experience shows the hero of the visit's campaign, else its general one.
  function showCampaign() {
    var current = campaign();
    var groups = document.querySelectorAll('[data-shopseg-campaigns]');
    Array.prototype.forEach.call(groups, function (group) {
      var match = null;
      Array.prototype.forEach.call(group.children, function (child) {
        if (current && child.getAttribute('data-shopseg-campaign') === current) match = child;
      });
      if (!match) return;
      Array.prototype.forEach.call(group.children, function (child) {
        child.hidden = child !== match;
      });
    });
  }

  function publish(segments) {
    window.shopseg = { segments: segments.slice() };
    var event;
    try {
      event = new CustomEvent('shopseg:segments', { detail: { segments: segments.slice() } });
    } catch (e) {
      return; // no CustomEvent constructor (very old browsers): window.shopseg is still set
    }
    document.dispatchEvent(event);
  }

  var tags = customerTags();
  showCampaign();
  (tags ? Promise.resolve(tags) : visitorSegments()).then(function (segments) {
    reveal(segments);
    publish(segments);
  });
})();
