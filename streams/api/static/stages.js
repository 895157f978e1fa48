// Stages: one card per stage with its figures, a lag sparkline and pause/resume.

import {request, seg} from "./api.js";
import {badge, clear, dec, el, empty, num, seconds, sparkline} from "./dom.js";
import {banner} from "./ui.js";

const FIGURES = [
  ["waiting", "waiting", num],
  ["active", "active", num],
  ["delayed", "delayed", num],
  ["dead", "dead", num],
  ["lag", "lag", num],
  ["lag_seconds", "lag (s)", seconds],
  ["throughput", "per second", dec],
  ["completed", "completed", num],
  ["failed", "failed", num],
];

export function mountStages(root, store) {
  const grid = el("div", {class: "cards"});
  const note = el("p", {class: "muted updated"});
  root.append(el("div", {class: "view-head"}, el("h1", {}, "Stages"), note), grid);
  const cards = new Map();

  function render(doc) {
    if (!doc) return;
    note.textContent = `figures of ${new Date(doc.at).toLocaleTimeString(undefined, {hour12: false})}`;
    const stages = doc.stages || [];
    if (!stages.length) {
      clear(grid).append(empty("this pipeline has no stages"));
      cards.clear();
      return;
    }
    if ([...cards.keys()].join("\n") !== stages.map((s) => s.stage).join("\n")) {
      clear(grid);
      cards.clear();
      for (const s of stages) {
        const card = makeCard(s.stage, store);
        cards.set(s.stage, card);
        grid.append(card.node);
      }
    }
    for (const s of stages) cards.get(s.stage).update(s, store.samples.get(s.stage) || []);
  }

  render(store.stats);
  store.refreshStats();
  return {onStats: render, unmount() {}};
}

function makeCard(name, store) {
  const values = {};
  const rows = FIGURES.map(([field, label]) => {
    values[field] = el("dd", {class: "num", "data-field": field});
    return el("div", {class: "figure"}, el("dt", {}, label), values[field]);
  });
  const state = el("span", {class: "state"});
  const consumers = el("span", {class: "muted", "data-field": "consumers"});
  const spark = el("div", {class: "spark-box", title: "lag, last samples"});
  const button = el("button", {type: "button", class: "pause", "data-action": "pause"}, "Pause");
  const title = el("h2", {class: "data"}, name);
  const stream = el("span", {class: "muted data", "data-field": "stream"});
  const node = el("section", {class: "card", "data-stage": name},
    el("header", {}, el("div", {}, title, el("div", {class: "sub"}, stream, consumers)), state),
    el("dl", {class: "figures"}, rows),
    el("div", {class: "card-foot"}, spark, button));
  let paused = false;

  button.addEventListener("click", async () => {
    button.disabled = true;
    const verb = paused ? "resume" : "pause";
    try {
      const answer = await request("POST", `/v1/stages/${seg(name)}/${verb}`);
      store.markPaused(name, Boolean(answer && answer.paused));
      banner(`stage ${name} ${answer && answer.paused ? "paused" : "resumed"}`, "info");
    } catch (error) {
      banner(`could not ${verb} stage ${name}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });

  function update(s, samples) {
    for (const [field, , format] of FIGURES) values[field].textContent = format(s[field]);
    paused = Boolean(s.paused);
    node.classList.toggle("is-paused", paused);
    const idle = !paused && !s.live_consumers;
    clear(state).append(paused ? badge("paused") : idle ? badge("no live consumer", "idle") : badge("running", "live"));
    button.textContent = paused ? "Resume" : "Pause";
    button.dataset.action = paused ? "resume" : "pause";
    stream.textContent = s.stream ? `reads ${s.stream}` : "";
    consumers.textContent = `${num(s.live_consumers)} of ${num(s.consumers)} consumers live`;
    consumers.title = "consumers with a live heartbeat, of the group's consumers";
    clear(spark).append(sparkline(samples.map((x) => x.lag)));
  }

  return {node, update};
}
