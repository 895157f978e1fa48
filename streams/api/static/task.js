// Task: look a request id up; its state, history as a timeline, attempts, last error and outcome.

import {ApiError, request, seg} from "./api.js";
import {badge, clear, dataText, el, empty, num, urlOrText, when} from "./dom.js";
import {banner} from "./ui.js";

export function mountTask(root, requestId) {
  const input = el("input", {type: "search", name: "request_id", placeholder: "request id",
    autocomplete: "off", spellcheck: "false", "aria-label": "request id"});
  input.value = requestId;
  const form = el("form", {class: "search"}, input, el("button", {type: "submit", class: "primary"}, "Look up"));
  const result = el("div", {class: "task-result"});
  root.append(el("div", {class: "view-head"}, el("h1", {}, "Task"), form), result);
  let stopped = false;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (id) location.hash = `#/task/${encodeURIComponent(id)}`;
  });

  async function load() {
    if (!requestId) {
      clear(result).append(empty("enter a request id to see its state and history"));
      return;
    }
    try {
      const task = await request("GET", `/v1/tasks/${seg(requestId)}`);
      if (!stopped) clear(result).append(...renderTask(task));
    } catch (error) {
      if (stopped) return;
      if (error instanceof ApiError && error.status === 404) {
        clear(result).append(empty(error.message));
      } else {
        banner(`task ${requestId}: ${error.message}`);
      }
    }
  }

  load();
  if (!requestId) input.focus();
  return {
    unmount() { stopped = true; },
    onEvent(name, data) {
      if (requestId && data && data.jobId === requestId && name.startsWith("job-")) load();
    },
  };
}

function renderTask(t) {
  const facts = el("dl", {class: "facts", "data-block": "task"},
    fact("request", dataText("span", t.request_id, 200)),
    fact("state", badge(t.state || "unknown"), "state"),
    fact("stage", dataText("span", t.stage), "stage"),
    fact("entry", dataText("span", t.entry, 60, {class: "data mono"})),
    fact("at", when(t.at)),
    fact("final", t.final ? "yes" : "no", "final"),
    fact("result", t.result ? badge(t.result) : "running", "result"),
    fact("attempts", num(t.attempts), "attempts"));
  const parts = [facts];
  if (t.last_error) {
    parts.push(el("h2", {}, "Last error"), el("pre", {class: "error-text data", "data-field": "last_error"}, String(t.last_error)));
  }
  parts.push(el("h2", {}, "History"), timeline(t.history || []));
  parts.push(el("h2", {}, "Outcome"), outcome(t.outcome));
  return parts;
}

function fact(label, value, field = null) {
  return el("div", {class: "fact", "data-field": field}, el("dt", {}, label), el("dd", {}, value));
}

function timeline(history) {
  if (!history.length) return empty("no history recorded");
  const list = el("ol", {class: "timeline", "data-block": "history"});
  for (const h of history) {
    list.append(el("li", {"data-state": h.state || ""},
      el("time", {class: "mono"}, when(h.at)),
      el("span", {class: "step"}, dataText("strong", h.stage), " ", badge(h.state || "?")),
      dataText("span", h.entry, 40, {class: "data mono muted"}),
      h.detail && h.detail.error ? dataText("span", h.detail.error, 160, {class: "data error-text"}) : null));
  }
  return list;
}

function outcome(value) {
  if (value === null || value === undefined) return empty("no outcome yet");
  if (typeof value !== "object" || Array.isArray(value)) {
    return el("pre", {class: "data", "data-block": "outcome"}, JSON.stringify(value, null, 2));
  }
  const body = el("tbody");
  for (const [key, v] of Object.entries(value)) {
    const shown = typeof v === "string" ? urlOrText(v) : dataText("span", JSON.stringify(v), 300, {class: "data mono"});
    body.append(el("tr", {}, dataText("th", key, 60), el("td", {}, shown)));
  }
  return el("table", {class: "grid kv", "data-block": "outcome"}, body);
}
