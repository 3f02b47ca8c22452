// #/tasks/{id} — one task: its facts, its configuration, its log and its failure screenshot.

import { api, imageUrl } from "./api.js";
import { taskActions } from "./tasks.js";
import { clear, h, routeTo, showError, statusBadge, throttle, when } from "./ui.js";

const LOG_PAGE = 1000;

export function renderTask(view, { feed, params }) {
  const taskId = Number(params[0]);
  let disposed = false;
  let lastLogId = 0;
  let shotFor = null;
  let shotUrl = null;

  const head = h("div", { class: "task-head" });
  const facts = h("dl", { class: "facts", id: "task-facts" });
  const config = h("pre", { class: "json", id: "task-config" });
  const logBody = h("tbody");
  const logEmpty = h("p", { class: "empty", id: "logs-empty" }, "No log lines yet.");
  const shot = h("figure", { class: "shot", id: "task-screenshot" });

  clear(
    view,
    h("p", {}, h("a", { href: "#/tasks" }, "‹ All tasks")),
    head,
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel padded" }, h("h2", {}, "Details"), facts),
      h("section", { class: "panel padded" }, h("h2", {}, "Script configuration"), config),
    ),
    h(
      "section",
      { class: "panel padded", id: "task-logs" },
      h("h2", {}, "Log"),
      h("div", { class: "table-wrap" }, h("table", { class: "data logs cards" }, logBody)),
      logEmpty,
    ),
    h("section", { class: "panel padded" }, h("h2", {}, "Failure screenshot"), shot),
  );

  function fact(label, ...value) {
    return [h("dt", {}, label), h("dd", {}, ...value)];
  }

  function show(task) {
    clear(
      head,
      h("h1", {}, `Task #${task.id}`),
      statusBadge(task.status, task.stop_requested),
      h("span", { class: "actions" }, taskActions(task, (updated) => (updated ? show(updated) : routeTo("/tasks")), { small: false })),
    );
    head.dataset.status = String(task.status);
    clear(
      facts,
      fact("Device", h("a", { class: "mono", href: `#/tasks?serial=${encodeURIComponent(task.serial)}` }, task.serial)),
      fact("Account", task.username ? `@${task.username} (${task.platform})` : `— (${task.platform})`),
      fact("Script", task.script_name),
      fact("Source", task.source),
      fact("Hub", task.hub || "—"),
      fact("Created", when(task.created_at)),
      fact("Start time", task.start_time ? [task.start_time, " → ", when(task.scheduled_at)] : "now"),
      fact("Started", when(task.started_at)),
      fact("Ended", when(task.end_time)),
      fact("Attempts", `${task.attempt} (retried ${task.retry_count}×)`),
      fact("Failure kind", task.failure_kind || "—"),
      fact("Remark", h("span", { id: "task-remark" }, task.remark || "—")),
    );
    config.textContent = JSON.stringify(task.script_config, null, 2);
    if (task.status === 3 && shotFor !== `${task.id}:${task.attempt}`) loadScreenshot(task);
    if (task.status !== 3 && shotFor === null) {
      clear(shot, h("p", { class: "muted" }, "None: a screenshot is taken when an attempt fails."));
    }
  }

  async function loadScreenshot(task) {
    shotFor = `${task.id}:${task.attempt}`;
    try {
      const next = await imageUrl(`/task/${task.id}/screenshot`);
      if (disposed) {
        if (next) URL.revokeObjectURL(next);
        return;
      }
      if (shotUrl) URL.revokeObjectURL(shotUrl);
      shotUrl = next;
      if (next) {
        clear(
          shot,
          h("a", { href: next, target: "_blank", rel: "noopener" }, h("img", { src: next, alt: `Screen of ${task.serial} when task ${task.id} failed` })),
          h("figcaption", {}, `The phone's screen when attempt ${task.attempt} failed.`),
        );
      } else {
        clear(shot, h("p", { class: "muted" }, "No screenshot was taken for this failure."));
      }
    } catch (error) {
      showError(error);
    }
  }

  // One reader at a time, so that no line is appended twice; a call during a read reads again after it.
  let logsBusy = false;
  let logsAgain = false;
  async function loadLogs() {
    if (logsBusy) {
      logsAgain = true;
      return;
    }
    logsBusy = true;
    try {
      for (;;) {
        const data = await api("GET", `/task/${taskId}/logs`, { query: { after_id: lastLogId, limit: LOG_PAGE } });
        if (disposed) return;
        for (const line of data.logs) {
          lastLogId = Math.max(lastLogId, line.id);
          const extra = Object.keys(line.fields || {}).length ? ` ${JSON.stringify(line.fields)}` : "";
          logBody.append(
            h(
              "tr",
              { class: `level-${line.level}` },
              h("td", { "data-label": "At" }, when(line.at)),
              h("td", { "data-label": "Attempt" }, String(line.attempt)),
              h("td", { "data-label": "Level" }, line.level),
              h("td", { "data-label": "Message" }, line.message + extra),
            ),
          );
        }
        logEmpty.classList.toggle("hidden", logBody.children.length > 0);
        if (data.logs.length < LOG_PAGE) return;
      }
    } catch (error) {
      if (!disposed) showError(error);
    } finally {
      logsBusy = false;
      if (logsAgain && !disposed) {
        logsAgain = false;
        loadLogs();
      }
    }
  }

  async function load() {
    try {
      const task = await api("GET", `/task/${taskId}`);
      if (disposed) return;
      show(task);
      await loadLogs();
    } catch (error) {
      if (disposed) return;
      if (error.code === 40401) {
        clear(view, h("p", {}, h("a", { href: "#/tasks" }, "‹ All tasks")), h("h1", {}, `Task #${taskId}`), h("p", { class: "empty" }, error.message));
      }
      if (error.code !== 40101) showError(error);
    }
  }
  const refreshLogs = throttle(loadLogs, 500);

  const unsubscribe = [
    feed.on("task", (task) => {
      if (task.id !== taskId) return;
      show(task);
      refreshLogs();
    }),
    feed.on("resync", () => load()),
    feed.on("open", () => load()),
  ];
  load();

  return () => {
    disposed = true;
    for (const stop of unsubscribe) stop();
    if (shotUrl) URL.revokeObjectURL(shotUrl);
  };
}
