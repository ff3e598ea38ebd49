// Settings: PATCH /api/settings with only what changed; refused values are shown beside their field
// (nothing is saved then). A new prefix or holdout tag warns before saving that every tag is rewritten.
(function () {
  "use strict";
  const form = document.getElementById("settings-form");
  const status = document.getElementById("save-status");
  const warning = document.getElementById("rewrite-warning");
  const el = form.elements;

  function current() {
    const number = (input) => (/^-?\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : input.value.trim());
    return {
      tag_prefix: el.tag_prefix.value.trim(), holdout_tag: el.holdout_tag.value.trim(),
      drift_policy: (form.querySelector("input[name=drift_policy]:checked") || {}).value,
      tag_metafield: el.tag_metafield.checked, recompute_hour: Number(el.recompute_hour.value),
      checkout_abandon_minutes: number(el.checkout_abandon_minutes),
      payload_retention_days: number(el.payload_retention_days),
      inactive_customer_days: number(el.inactive_customer_days),
      default_margin_percent: number(el.default_margin_percent),
    };
  }

  let initial = {
    tag_prefix: el.tag_prefix.dataset.initial, holdout_tag: el.holdout_tag.dataset.initial,
    drift_policy: form.querySelector("input[name=drift_policy]").dataset.initial,
    tag_metafield: el.tag_metafield.dataset.initial === "true", recompute_hour: Number(el.recompute_hour.dataset.initial),
    checkout_abandon_minutes: Number(el.checkout_abandon_minutes.dataset.initial),
    payload_retention_days: Number(el.payload_retention_days.dataset.initial),
    inactive_customer_days: Number(el.inactive_customer_days.dataset.initial),
    default_margin_percent: Number(el.default_margin_percent.dataset.initial),
  };

  function changes() {
    const now = current();
    return Object.fromEntries(Object.entries(now).filter(([key, value]) => value !== initial[key]));
  }

  function warn() {
    const changed = changes();
    warning.hidden = !("tag_prefix" in changed || "holdout_tag" in changed);
  }
  form.addEventListener("input", warn);
  form.addEventListener("change", warn);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changed = changes();
    window.shopseg.clearProblems(form);
    if (!Object.keys(changed).length) { status.textContent = "Nothing to save"; return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = "Saving…";
    try {
      const saved = await window.shopseg.api("PATCH", form.dataset.api, changed);
      initial = Object.fromEntries(Object.keys(initial).map((key) => [key, saved[key]]));
      status.textContent = "Saved";
      warning.hidden = true;
    } catch (err) {
      status.textContent = "";
      if (err.problems && err.problems.length) window.shopseg.showProblems(form, err.problems);
      else window.shopseg.showError(`The settings were not saved: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
})();
