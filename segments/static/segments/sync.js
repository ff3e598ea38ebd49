// Retry failed tag changes (all, or one row) through POST /api/sync/retry, then show the answer.
(function () {
  "use strict";
  const status = document.getElementById("retry-status");
  const all = document.getElementById("retry-all");
  const endpoint = all && all.dataset.api;

  async function retry(ids, button) {
    button.disabled = true;
    status.textContent = "Retrying…";
    try {
      const answer = await window.shopseg.api("POST", endpoint, ids ? {ids} : {});
      const n = answer.retried;
      status.textContent = n ? `${n} change${n === 1 ? "" : "s"} queued again; they are written within seconds.`
                             : "Nothing to retry: those changes are no longer failed.";
      const rows = ids ? ids.map((id) => document.querySelector(`tr[data-change="${id}"]`))
                       : Array.from(document.querySelectorAll("tr[data-change]"));
      rows.forEach((row) => row && row.remove());
      const failed = document.querySelector("[data-count=failed]");
      if (failed) failed.textContent = String(Math.max(0, Number(failed.textContent.replace(/\D/g, "")) - n));
    } catch (err) {
      status.textContent = "";
      window.shopseg.showError(`The retry did not go through: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  if (all) all.addEventListener("click", () => retry(null, all));
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-retry]");
    if (button) retry([Number(button.dataset.retry)], button);
  });
})();
