// Running: the tasks being handled now (elapsed time ticking) and what is queued per stage.

import {request} from "./api.js";
import {clear, dataText, el, empty, num, seconds} from "./dom.js";
import {banner} from "./ui.js";

const REFRESH_MS = 2000;

export function mountRunning(root) {
  const summary = el("p", {class: "muted", "data-field": "summary"});
  const running = el("div", {class: "table-box"});
  const queued = el("div", {class: "table-box"});
  root.append(el("div", {class: "view-head"}, el("h1", {}, "Running"), summary),
    el("h2", {}, "Tasks running now"), running, el("h2", {}, "Queued per stage"), queued);
  let ticking = [];
  let stopped = false;

  async function refresh() {
    try {
      const doc = await request("GET", "/v1/running");
      if (!stopped) render(doc);
    } catch (error) {
      if (!stopped) banner(`running tasks: ${error.message}`);
    }
  }

  function render(doc) {
    const fetched = performance.now();
    const s = doc.summary || {};
    summary.textContent = `${num(s.running)} running, ${num(s.queued)} queued over ${num(s.stages)} stages`;
    ticking = [];
    const tasks = doc.running || [];
    clear(running).append(tasks.length ? runningTable(tasks, fetched, ticking) : empty("nothing is running"));
    const stages = Object.entries(doc.queued || {});
    clear(queued).append(stages.length ? queuedTable(stages) : empty("nothing is queued"));
  }

  function tick() {
    const now = performance.now();
    for (const t of ticking) t.cell.textContent = seconds(t.base + (now - t.fetched) / 1000);
  }

  refresh();
  const refresher = setInterval(refresh, REFRESH_MS);
  const ticker = setInterval(tick, 250);
  return {
    unmount() {
      stopped = true;
      clearInterval(refresher);
      clearInterval(ticker);
    },
  };
}

function runningTable(tasks, fetched, ticking) {
  const body = el("tbody");
  for (const t of tasks) {
    const elapsed = el("td", {class: "num", "data-field": "elapsed"}, seconds(t.elapsed_seconds));
    ticking.push({cell: elapsed, base: Number(t.elapsed_seconds) || 0, fetched});
    const link = el("a", {href: `#/task/${encodeURIComponent(t.request_id || "")}`, class: "data"}, t.request_id || "–");
    body.append(el("tr", {"data-request-id": t.request_id || ""},
      el("td", {}, link), dataText("td", t.stage), dataText("td", t.consumer),
      dataText("td", t.entry, 40, {class: "data mono"}), el("td", {class: "num"}, num(t.deliveries)), elapsed));
  }
  return el("table", {class: "grid", "data-table": "running"},
    el("thead", {}, el("tr", {}, el("th", {}, "request"), el("th", {}, "stage"), el("th", {}, "consumer"),
      el("th", {}, "entry"), el("th", {class: "num"}, "deliveries"), el("th", {class: "num"}, "elapsed"))),
    body);
}

function queuedTable(stages) {
  const body = el("tbody");
  for (const [stage, n] of stages) {
    body.append(el("tr", {"data-stage": stage}, dataText("td", stage), el("td", {class: "num", "data-field": "queued"}, num(n))));
  }
  return el("table", {class: "grid narrow", "data-table": "queued"},
    el("thead", {}, el("tr", {}, el("th", {}, "stage"), el("th", {class: "num"}, "queued"))), body);
}
