// The playbook form: PUT /api/segments/<id>/playbook with every field; refused values are shown
// beside their field from the answer's `problems` paths. Also print and the Markdown download.
(function () {
  "use strict";
  const form = document.getElementById("playbook-form");
  const status = document.getElementById("save-status");

  const preset = document.getElementById("experience-preset");
  function showPreset() {
    form.querySelectorAll("fieldset[data-preset]").forEach((box) => { box.hidden = box.dataset.preset !== preset.value; });
  }
  preset.addEventListener("change", showPreset);

  // Anything a number box cannot read goes through as typed, so the API says what is wrong.
  function number(text, whole) {
    const value = String(text).trim();
    if (value === "") return null;
    return (whole ? /^-?\d+$/ : /^-?\d+(\.\d+)?$/).test(value) ? Number(value) : value;
  }

  // The picked preset's fields; campaigns are lines of "utm_campaign | heading | link".
  function experience() {
    if (!preset.value) return {};
    const chosen = {preset: preset.value};
    form.querySelectorAll(`fieldset[data-preset="${CSS.escape(preset.value)}"] [data-field]`).forEach((input) => {
      const kind = input.dataset.kind;
      if (kind === "money" || kind === "percent") chosen[input.dataset.field] = number(input.value, kind === "percent");
      else if (kind === "campaigns") {
        chosen[input.dataset.field] = input.value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
          const [campaign = "", heading = "", link = ""] = line.split("|").map((part) => part.trim());
          return {campaign, heading, link};
        });
      } else chosen[input.dataset.field] = input.value;
    });
    return chosen;
  }

  function values() {
    const data = new FormData(form);
    const cap = form.elements.frequency_cap.value.trim();
    return {
      goal: data.get("goal"), message: data.get("message"), offer: data.get("offer"),
      cadence: data.get("cadence"), owner: data.get("owner"), kpi: data.get("kpi"),
      channels: data.getAll("channels"),
      campaign_ideas: String(data.get("campaign_ideas")).split("\n").map((s) => s.trim()).filter(Boolean),
      // Anything the number box cannot read goes through as typed, so the API says what is wrong.
      frequency_cap: cap === "" ? null : (/^-?\d+$/.test(cap) ? Number(cap) : cap),
      experience: experience(), offer_percent: number(form.elements.offer_percent.value, true),
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = "Saving…";
    window.shopseg.clearProblems(form);
    try {
      const saved = await window.shopseg.api("PUT", form.dataset.api, values());
      status.textContent = "Saved";
      const banner = document.getElementById("unsaved");
      if (banner) banner.remove();
      form.elements.campaign_ideas.value = (saved.campaign_ideas || []).join("\n");
    } catch (err) {
      status.textContent = "";
      if (err.problems && err.problems.length) window.shopseg.showProblems(form, err.problems);
      else window.shopseg.showError(`The playbook was not saved: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });

  // The download needs a session token in its URL (a plain link carries no Authorization header).
  document.getElementById("download-md").addEventListener("click", async (event) => {
    event.preventDefault();
    const link = event.currentTarget;
    try {
      const response = await fetch(link.getAttribute("href"));
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const a = Object.assign(document.createElement("a"), {href: url, download: link.getAttribute("download")});
      document.body.append(a);
      a.click();
      a.remove();
      URL.revokeObjectURL(url);
    } catch (err) {
      window.shopseg.showError(`The Markdown could not be downloaded: ${err.message}`);
    }
  });
  document.getElementById("print").addEventListener("click", () => window.print());
})();
