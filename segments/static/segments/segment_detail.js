// A segment's page: "Why?" beside a member asks the API for each condition's value for that
// customer and shows the verdict under the row.
(function () {
  "use strict";

  function render(box, why) {
    box.replaceChildren();
    const verdict = document.createElement("p");
    const strong = document.createElement("strong");
    strong.textContent = why.qualifies ? "Matches the rules" : "Does not match the rules now";
    verdict.append(strong);
    if (why.member && why.holdout) verdict.append(" · in the holdout (no tag)");
    else if (why.member) verdict.append(" · member");
    else verdict.append(" · not a member");
    const list = document.createElement("ul");
    list.className = "diff";
    for (const condition of why.conditions) {
      const item = document.createElement("li");
      item.className = condition.passed ? "added" : "removed";
      const value = condition.value === null || condition.value === undefined ? "no value" : String(condition.value);
      item.textContent = `${condition.passed ? "✓" : "✗"} ${condition.text} — ${condition.label}: ${value}`;
      list.append(item);
    }
    box.append(verdict, list);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-why]");
    if (!button) return;
    const box = document.getElementById(button.getAttribute("aria-controls"));
    if (button.getAttribute("aria-expanded") === "true") {
      button.setAttribute("aria-expanded", "false");
      box.hidden = true;
      return;
    }
    button.setAttribute("aria-expanded", "true");
    box.hidden = false;
    box.innerHTML = '<span class="skeleton" aria-hidden="true"></span><span class="visually-hidden">Loading…</span>';
    try {
      render(box, await window.shopseg.api("GET", button.dataset.why));
    } catch (err) {
      box.textContent = "";
      const p = document.createElement("p");
      p.className = "field-error";
      p.setAttribute("role", "alert");
      p.textContent = `Could not explain this membership: ${err.message}`;
      box.append(p);
    }
  });
})();
