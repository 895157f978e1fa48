// Banners and in-page dialogs: no alert() or confirm().

import {el} from "./dom.js";

const banners = () => document.getElementById("banners");

/** Show ``message`` in a banner; kind "error" stays until dismissed, "info" fades after a while. */
export function banner(message, kind = "error") {
  // A call refused with 401 has opened the token prompt: that says it better than a banner.
  if (kind === "error" && document.getElementById("token-dialog").open) return null;
  const text = String(message);
  for (const old of banners().children) {
    if (old.dataset.text === text) old.remove();  // the same error again: one banner
  }
  const close = el("button", {type: "button", class: "close", "aria-label": "dismiss"}, "×");
  const node = el("div", {class: `banner banner-${kind}`, "data-text": text}, el("span", {class: "data"}, text), close);
  close.addEventListener("click", () => node.remove());
  banners().append(node);
  if (kind !== "error") setTimeout(() => node.remove(), 6000);
  return node;
}

export function clearBanners() {
  banners().replaceChildren();
}

/** Ask a yes/no question in a dialog; resolves true on confirm. */
export function confirmDialog(title, text, action = "Confirm") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  return new Promise((resolve) => {
    const form = document.getElementById("confirm-form");
    const cancel = document.getElementById("confirm-cancel");
    const done = (answer) => {
      form.removeEventListener("submit", onOk);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onOk = (event) => { event.preventDefault(); done(true); };
    const onCancel = (event) => { event.preventDefault(); done(false); };
    form.addEventListener("submit", onOk);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
  });
}

let tokenCallback = null;

/** Open the token prompt (once at a time); the latest ``onToken(value)`` gets what is entered. */
export function tokenPrompt(reason, onToken) {
  const dialog = document.getElementById("token-dialog");
  document.getElementById("token-reason").textContent = reason;
  tokenCallback = onToken;
  if (dialog.open) return;
  const input = document.getElementById("token-input");
  input.value = "";
  dialog.showModal();
  input.focus();
}

export function setUpTokenPrompt() {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  // Nothing works without a token: Escape does not dismiss the prompt.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    dialog.close();
    if (tokenCallback) tokenCallback(value);
  });
}
