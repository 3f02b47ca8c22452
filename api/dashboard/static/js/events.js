// GET /api/v1/events read with fetch rather than EventSource: fetch can send the key as a header
// (so it stays out of URLs and access logs) and can read the error envelope when the stream is refused.

import { authHeaders, errorFrom, url } from "./api.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class LiveFeed extends EventTarget {
  constructor() {
    super();
    this.state = "off";
    this.running = false;
    this.controller = null;
  }

  // Listen to one event ("stats", "task", "resync", "error", "open", "refused", "state");
  // returns the function that stops listening.
  on(name, listener) {
    const wrapped = (event) => listener(event.detail);
    this.addEventListener(name, wrapped);
    return () => this.removeEventListener(name, wrapped);
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.generation = (this.generation || 0) + 1;
    this.loop(this.generation);
  }

  stop() {
    this.running = false;
    this.generation = (this.generation || 0) + 1;
    if (this.controller) this.controller.abort();
    this.setState("off");
  }

  restart() {
    this.stop();
    this.start();
  }

  // One loop per start(); a newer start() or a stop() retires it (its generation is no longer current).
  async loop(generation) {
    const current = () => this.running && this.generation === generation;
    let delay = 1000;
    while (current()) {
      this.setState("connecting");
      const controller = new AbortController();
      this.controller = controller;
      try {
        const response = await fetch(url("/events"), {
          headers: authHeaders({ Accept: "text/event-stream" }),
          signal: controller.signal,
          cache: "no-store",
        });
        if (!current()) break;
        if (!response.ok) {
          const error = await errorFrom(response);
          this.emit("refused", error);
          // Without a valid key or plan, retrying changes nothing until the operator acts.
          if (error.code === 40101 || error.code === 40301) {
            this.running = false;
            this.setState("off");
            return;
          }
        } else {
          this.setState("live");
          delay = 1000;
          this.emit("open", null);
          await this.read(response.body);
        }
      } catch {
        // A dropped connection: try again below.
      }
      if (!current()) break;
      this.setState("connecting");
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        this.dispatchBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
      }
    }
  }

  // One event block: "event: name" and "data: ..." lines; ":" lines are comments (keepalives).
  dispatchBlock(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const fieldName = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (fieldName === "event") name = value;
      else if (fieldName === "data") data.push(value);
    }
    if (!data.length) return;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch {
      return;
    }
    this.emit(name, payload);
  }
}
