// Dead letters: the filtered list, replay and purge of the filtered set (a dry run
// first, then confirm), and one letter's detail with its payload to edit.

import {request, query, seg} from "./api.js";
import {clear, dataText, el, empty, num, when} from "./dom.js";
import {mergeDiff} from "./patch.js";
import {banner, confirmDialog} from "./ui.js";

const PAGE = 50;

export function mountDeadLetters(root, store, filters) {
  const stage = el("select", {name: "stage", "aria-label": "stage"}, el("option", {value: ""}, "all stages"));
  for (const s of store.stageNames()) stage.append(el("option", {value: s}, s));
  stage.value = filters.stage || "";
  const reason = el("input", {type: "search", name: "reason", placeholder: "reason (regex)",
    title: "a regular expression searched in the reason", "aria-label": "reason"});
  reason.value = filters.reason || "";
  const form = el("form", {class: "filters"}, stage, reason, el("button", {type: "submit"}, "Filter"));
  const replay = el("button", {type: "button", "data-action": "replay-all"}, "Replay matching…");
  const purge = el("button", {type: "button", class: "danger", "data-action": "purge-all"}, "Purge matching…");
  const list = el("div", {class: "table-box"});
  const total = el("span", {class: "muted", "data-field": "total"});
  const more = el("button", {type: "button", hidden: true, "data-action": "more"}, "Load more");
  root.append(el("div", {class: "view-head"}, el("h1", {}, "Dead letters"), form),
    el("div", {class: "toolbar"}, replay, purge, total), list, more);
  let cursor = null;
  let body = null;

  const selection = () => ({stage: stage.value || null, reason: reason.value.trim() || null});

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/dlq${query({stage: stage.value, reason: reason.value.trim()})}`;
  });

  async function load(next = null) {
    try {
      const doc = await request("GET", `/v1/dlq${query({...selection(), cursor: next, limit: PAGE})}`);
      const letters = doc.letters || [];
      if (!next) {
        body = el("tbody");
        clear(list).append(letters.length ? letterTable(body) : empty("no dead letters"));
      }
      for (const letter of letters) body.append(letterRow(letter));
      if (!next) total.textContent = typeof doc.total === "number" ? `${num(doc.total)} matching` : "";
      cursor = doc.next || null;
      more.hidden = !cursor;
    } catch (error) {
      banner(`dead letters: ${error.message}`);
    }
  }

  more.addEventListener("click", () => load(cursor));
  replay.addEventListener("click", () => operate("replay", selection(), () => load()));
  purge.addEventListener("click", () => operate("purge", selection(), () => load()));
  load();
  return {unmount() {}};
}

function letterTable(body) {
  const head = ["id", "stage", "request", "reason", "attempts", "dead at"].map(
    (h) => el("th", {class: h === "attempts" ? "num" : null}, h));
  return el("table", {class: "grid", "data-table": "dlq"}, el("thead", {}, el("tr", {}, head)), body);
}

function letterRow(l) {
  const href = `#/dlq/${encodeURIComponent(l.stage)}/${encodeURIComponent(l.id)}`;
  return el("tr", {"data-id": l.id, "data-stage": l.stage},
    el("td", {}, el("a", {href, class: "mono"}, l.id)), dataText("td", l.stage),
    dataText("td", l.request_id, 40), dataText("td", l.reason, 80),
    el("td", {class: "num"}, num(l.attempts)), el("td", {}, when(l.dead_at * 1000)));
}

/** Replay or purge: a dry run tells how many match, the operator confirms, then it runs. */
async function operate(verb, selection, after) {
  const body = Object.fromEntries(Object.entries(selection).filter(([, v]) => v !== null && v !== undefined));
  try {
    const dry = await request("POST", `/v1/dlq/${verb}`, {...body, dry_run: true});
    const matched = dry ? dry.matched : 0;
    if (!matched) {
      banner(`no dead letters match: nothing to ${verb}`, "info");
      return;
    }
    if (body.ids && matched > body.ids.length) {  // an API that ignored the ids would act on the whole stage
      banner(`${verb}: the API matched ${num(matched)} letters for ${body.ids.length} id(s); nothing was done`);
      return;
    }
    const scope = [body.stage && `stage ${body.stage}`, body.reason && `reason matching /${body.reason}/`,
      body.ids && `letter ${body.ids.join(", ")}`].filter(Boolean).join(", ") || "every stage";
    const what = `${num(matched)} dead letter${matched === 1 ? "" : "s"} (${scope})`;
    const text = verb === "replay" ? `Move ${what} back to ${matched === 1 ? "its stream" : "their streams"}?`
      : `Delete ${what} for good? This cannot be undone.`;
    if (!await confirmDialog(verb === "replay" ? "Replay dead letters" : "Purge dead letters", text,
      `${verb === "replay" ? "Replay" : "Purge"} ${num(matched)}`)) return;
    const report = await request("POST", `/v1/dlq/${verb}`, {...body, dry_run: false});
    const done = report.done ?? report.moved;
    const skipped = Array.isArray(report.skipped) ? report.skipped.length : report.skipped;
    banner(`${verb}: ${num(done)} ${verb === "replay" ? "moved" : "removed"}, ${num(skipped || 0)} skipped`, "info");
    after();
  } catch (error) {
    banner(`${verb}: ${error.message}`);
  }
}

export function mountLetter(root, stage, id) {
  const box = el("div", {class: "letter"});
  root.append(el("div", {class: "view-head"}, el("h1", {}, "Dead letter"),
    el("a", {href: `#/dlq${query({stage})}`}, "← all dead letters of this stage")), box);

  async function load() {
    try {
      render(await request("GET", `/v1/dlq/${seg(stage)}/${seg(id)}`));
    } catch (error) {
      clear(box).append(empty(error.message));
    }
  }

  function render(letter) {
    const facts = el("dl", {class: "facts"},
      ...[["id", letter.id], ["stage", letter.stage], ["request", letter.request_id], ["reason", letter.reason],
        ["source", letter.source], ["group", letter.group], ["consumer", letter.consumer],
        ["attempts", num(letter.attempts)], ["deliveries", num(letter.deliveries)],
        ["dead at", when(letter.dead_at * 1000)]].map(([k, v]) =>
        el("div", {class: "fact", "data-field": k}, el("dt", {}, k), el("dd", {}, dataText("span", v, 300)))));
    const parts = [facts];
    if (letter.last_error) parts.push(el("h2", {}, "Last error"), el("pre", {class: "error-text data"}, letter.last_error));
    if ((letter.errors || []).length) {
      parts.push(el("h2", {}, "Errors"), el("ol", {class: "errors"}, letter.errors.map((e) => dataText("li", e, 500))));
    }
    parts.push(el("h2", {}, "Payload"), editor(letter, render));
    clear(box).append(...parts);
  }

  load();
  return {unmount() {}};
}

function editor(letter, rerender) {
  if (letter.payload === null || letter.payload === undefined) {
    return empty("the payload did not decode as a JSON object: it cannot be edited here");
  }
  const text = el("textarea", {class: "payload mono", name: "payload", spellcheck: "false", rows: 14, "aria-label": "payload"});
  text.value = JSON.stringify(letter.payload, null, 2);
  const save = el("button", {type: "button", class: "primary", "data-action": "save"}, "Save changes");
  const replay = el("button", {type: "button", "data-action": "replay"}, "Replay…");
  const purge = el("button", {type: "button", class: "danger", "data-action": "purge"}, "Purge…");
  // request_id narrows the selection too, so that an API that ignores ``ids`` still acts on this task only
  const one = {stage: letter.stage, ids: [letter.id], request_id: letter.request_id || null};
  const back = () => { location.hash = `#/dlq${query({stage: letter.stage})}`; };

  save.addEventListener("click", async () => {
    let patch;
    try {
      patch = mergeDiff(letter.payload, JSON.parse(text.value));
    } catch (error) {
      banner(`payload: ${error.message}`);
      return;
    }
    if (!Object.keys(patch).length) {
      banner("nothing changed", "info");
      return;
    }
    try {
      const edited = await request("PATCH", `/v1/dlq/${seg(letter.stage)}/${seg(letter.id)}`, patch,
        "application/merge-patch+json");
      // An edit may give the letter a new id: keep the address pointing at it, without a new route.
      history.replaceState(null, "", `#/dlq/${encodeURIComponent(edited.stage)}/${encodeURIComponent(edited.id)}`);
      rerender(edited);
      banner(`payload saved (merge patch ${JSON.stringify(patch).slice(0, 200)})`, "info");
    } catch (error) {
      banner(`save: ${error.message}`);
    }
  });
  replay.addEventListener("click", () => operate("replay", one, back));
  purge.addEventListener("click", () => operate("purge", one, back));
  return el("div", {class: "editor"}, text, el("div", {class: "toolbar"}, save, replay, purge));
}
