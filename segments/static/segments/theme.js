// Copy buttons: the snippet's exact text to the clipboard, announced through the live region.
(function () {
  "use strict";
  const status = document.getElementById("copy-status");
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const code = document.getElementById(button.dataset.copy);
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(code.textContent);
      button.textContent = "Copied";
      status.textContent = "Copied to the clipboard";
      setTimeout(() => { button.textContent = label; }, 2000);
    } catch (err) {
      // No clipboard permission (an old browser, a locked-down frame): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      status.textContent = "Copying is blocked here; the snippet is selected, press Ctrl+C (⌘C) to copy it.";
      window.shopseg.showError("The browser did not allow copying; the snippet is selected so you can copy it yourself.");
    }
  });
})();
