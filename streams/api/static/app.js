// The dashboard: a hash router over four views, the shared stage figures, the
// live feed and the token prompt. Served as plain files by the API app.

import {onUnauthorized, request, setToken} from "./api.js";
import {mountDeadLetters, mountLetter} from "./dlq.js";
import {badge, dataText, el, when} from "./dom.js";
import {EventStream} from "./events.js";
import {mountRunning} from "./running.js";
import {mountStages} from "./stages.js";
import {mountTask} from "./task.js";
import {banner, clearBanners, setUpTokenPrompt, tokenPrompt} from "./ui.js";

const SAMPLES = 60;
const FEED = 30;
const STATS_STALE_MS = 5000;  // no queue-stats event for this long: poll instead

const store = {
  pipeline: null,
  stats: null,
  statsAt: 0,
  samples: new Map(),
  stageNames() {
    return (this.pipeline ? this.pipeline.stages : []).map((s) => s.name);
  },
  takeStats(doc) {
    if (!doc || !Array.isArray(doc.stages)) return;
    this.stats = doc;
    this.statsAt = Date.now();
    for (const s of doc.stages) {
      const list = this.samples.get(s.stage) || [];
      if (list.length && list[list.length - 1].at === doc.at) continue;  // the same sample, fetched twice
      list.push({lag: Number(s.lag) || 0, at: doc.at});
      if (list.length > SAMPLES) list.splice(0, list.length - SAMPLES);
      this.samples.set(s.stage, list);
    }
    if (current && current.onStats) current.onStats(doc);
  },
  async refreshStats() {
    try {
      this.takeStats(await request("GET", "/v1/stats"));
    } catch (error) {
      banner(`stage figures: ${error.message}`);
    }
  },
  markPaused(stage, paused) {
    if (!this.stats) return;
    for (const s of this.stats.stages) if (s.stage === stage) s.paused = paused;
    if (current && current.onStats) current.onStats(this.stats);
  },
};

let current = null;

function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;  // a malformed address shows as typed
  }
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = hash.split("?");
  const parts = path.split("/").map(decoded);
  const params = Object.fromEntries(new URLSearchParams(search));
  const root = document.getElementById("view");
  if (current) current.unmount();
  root.replaceChildren();
  const view = parts[0] || "stages";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === view);
  }
  if (view === "running") current = mountRunning(root);
  else if (view === "task") current = mountTask(root, parts.slice(1).join("/"));
  else if (view === "dlq" && parts.length >= 3) current = mountLetter(root, parts[1], parts.slice(2).join("/"));
  else if (view === "dlq") current = mountDeadLetters(root, store, params);
  else current = mountStages(root, store);
  document.body.dataset.view = view;
}

let heard = 0;

function onEvent(name, data) {
  document.getElementById("live-state").dataset.heard = String(++heard);
  if (name === "queue-stats") {
    store.takeStats(data);
    return;
  }
  if (name.startsWith("job-") || name.startsWith("stage-")) feed(name, data);
  if ((name === "stage-paused" || name === "stage-resumed") && data) store.markPaused(data.stage, name === "stage-paused");
  if (current && current.onEvent) current.onEvent(name, data);
}

function feed(name, data) {
  const list = document.getElementById("feed");
  document.getElementById("feed-empty").hidden = true;
  const d = data && typeof data === "object" ? data : {};
  const kind = name.replace(/^(job|stage)-/, "");
  const subject = d.jobId ? el("a", {href: `#/task/${encodeURIComponent(d.jobId)}`, class: "data"}, String(d.jobId).slice(0, 60))
    : dataText("span", d.stage, 40);
  const detail = [d.stage && d.jobId ? dataText("span", d.stage, 30, {class: "data muted"}) : null,
    d.state ? badge(d.state) : null, d.by ? dataText("span", `by ${d.by}`, 40, {class: "data muted"}) : null];
  list.prepend(el("li", {"data-event": name},
    el("div", {class: "feed-top"}, el("span", {class: `event event-${kind}`}, name),
      el("time", {class: "mono muted"}, when(typeof d.at === "number" ? d.at : Date.now()))),
    el("div", {class: "feed-what"}, subject, ...detail)));
  while (list.children.length > FEED) list.lastElementChild.remove();
}

function liveState(state) {
  const node = document.getElementById("live-state");
  node.dataset.state = state;
  node.textContent = {live: "live", connecting: "connecting", reconnecting: "reconnecting…", locked: "needs a token"}[state] || state;
}

async function loadPipeline() {
  try {
    store.pipeline = await request("GET", "/v1/pipeline");
    document.getElementById("pipeline-name").textContent = store.pipeline.name || "";
    document.title = `millstream · ${store.pipeline.name}`;
    return true;
  } catch (error) {
    if (error.status !== 401) banner(`pipeline: ${error.message}`);
    return false;
  }
}

const events = new EventStream("/v1/events", onEvent, liveState);

async function start() {
  clearBanners();
  await loadPipeline();
  route();
  events.restart();
}

onUnauthorized((hadToken) => {
  events.stop();
  liveState("locked");
  tokenPrompt(hadToken ? "The API refused this token. Enter another one." : "This API needs a bearer token.",
    (value) => { setToken(value); start(); });
});

setUpTokenPrompt();
window.addEventListener("hashchange", route);
setInterval(() => {
  if (document.body.dataset.view === "stages" && Date.now() - store.statsAt > STATS_STALE_MS && events.stopped === false) {
    store.refreshStats();
  }
}, STATS_STALE_MS);
start();
