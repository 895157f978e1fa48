// The live event stream, read with fetch() so that it can send the bearer
// token (EventSource cannot). Reconnects with Last-Event-ID after a pause.

import {authHeaders, refused} from "./api.js";

const SILENCE_MS = 45000;  // three missed heartbeats (15 s each by default): the connection is dead

export class EventStream {
  /** ``onEvent(name, data, id)`` per event; ``onState(state)`` with connecting/live/reconnecting/locked. */
  constructor(path, onEvent, onState) {
    this.path = path;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = "";
    this.controller = null;
    this.stopped = true;
    this.backoff = 1000;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  /** Drop the current connection and open a new one at once (a new token). */
  restart() {
    this.stop();
    this.backoff = 1000;
    this.start();
  }

  async loop() {
    while (!this.stopped) {
      this.onState(this.lastId ? "reconnecting" : "connecting");
      const outcome = await this.once().catch(() => "error");
      if (outcome === "locked") {
        this.onState("locked");
        this.stopped = true;
        return;
      }
      if (this.stopped) return;
      this.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, this.backoff));
      this.backoff = Math.min(this.backoff * 2, 10000);
    }
  }

  async once() {
    const controller = new AbortController();
    this.controller = controller;
    const headers = {Accept: "text/event-stream", ...authHeaders()};
    if (this.lastId) headers["Last-Event-ID"] = this.lastId;
    const response = await fetch(this.path, {headers, signal: controller.signal, cache: "no-store"});
    if (response.status === 401) {
      refused();
      return "locked";
    }
    if (!response.ok || !response.body) return "error";
    this.onState("live");
    this.backoff = 1000;
    let timer = setTimeout(() => controller.abort(), SILENCE_MS);
    const parser = new Parser((name, data, id) => this.dispatch(name, data, id));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return "ended";
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), SILENCE_MS);
        parser.feed(value);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  dispatch(name, data, id) {
    if (id) this.lastId = id;
    let decoded;
    try {
      decoded = JSON.parse(data);
    } catch {
      decoded = data;
    }
    try {
      this.onEvent(name, decoded, id);
    } catch (error) {
      console.error(`event ${name} could not be shown:`, error);  // one odd event must not drop the stream
    }
  }
}

/** The text/event-stream format (WHATWG HTML §9.2.6), fed in chunks. */
export class Parser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.name = "";
    this.data = [];
    this.id = "";
  }

  feed(chunk) {
    this.buffer += chunk;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();  // an incomplete last line waits for the next chunk
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onEvent(this.name || "message", this.data.join("\n"), this.id);
      this.reset();
      return;
    }
    if (line.startsWith(":")) return;  // a comment: the heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.name = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}
