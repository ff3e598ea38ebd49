// Copy buttons: the snippet's exact text to the clipboard, announced through the live region.
// The async Clipboard API needs the framing admin to delegate clipboard-write to the app's frame;
// where it does not, a copy command on the selected snippet does the same on the user's click.
(function () {
  "use strict";
  const status = document.getElementById("copy-status");

  // A copy command copies the selection; a textarea holds the snippet byte for byte (a selection
  // of the <pre> would drop its final newline). Focus goes back to the button for keyboard users.
  function copyByCommand(text, button) {
    const area = Object.assign(document.createElement("textarea"), {value: text, readOnly: true});
    // Off-screen but rendered with its whitespace kept: the copy serialises what is laid out.
    Object.assign(area.style, {position: "fixed", top: "0", left: "-9999px", whiteSpace: "pre", opacity: "0"});
    area.setAttribute("aria-hidden", "true");
    document.body.append(area);
    area.select();
    let copied = false;
    try { copied = document.execCommand("copy"); } catch (err) { copied = false; }
    area.remove();
    button.focus();
    return copied;
  }

  function select(code) {
    const range = document.createRange();
    range.selectNodeContents(code);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const code = document.getElementById(button.dataset.copy);
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    let copied = false;
    try {
      await navigator.clipboard.writeText(code.textContent);
      copied = true;
    } catch (err) {
      copied = copyByCommand(code.textContent, button);
    }
    if (copied) {
      button.textContent = "Copied";
      status.textContent = "Copied to the clipboard";
      setTimeout(() => { button.textContent = label; }, 2000);
    } else {
      select(code);
      status.textContent = "Copying is blocked here; the snippet is selected, press Ctrl+C (⌘C) to copy it.";
      window.shopseg.showError("The browser did not allow copying; the snippet is selected so you can copy it yourself.");
    }
  });
})();
