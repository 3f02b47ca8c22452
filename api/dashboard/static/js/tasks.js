// #/tasks — stats, filters, the live table, and the actions on tasks.

import { api, listAll } from "./api.js";
import {
  STATUS_NAMES,
  attempt,
  clear,
  confirmAction,
  field,
  h,
  routeQuery,
  routeTo,
  select,
  showError,
  showInfo,
  statusBadge,
  throttle,
  when,
} from "./ui.js";

const FILTERS = ["status", "serial", "script_name", "source"];
const PAGE_SIZES = [20, 50, 100];

function readFilters() {
  const query = routeQuery();
  const filters = {};
  for (const name of FILTERS) if (query[name]) filters[name] = query[name];
  const page = Math.max(1, Number.parseInt(query.page || "1", 10) || 1);
  const pageSize = PAGE_SIZES.includes(Number(query.page_size)) ? Number(query.page_size) : 20;
  return { filters, page, pageSize };
}

function matches(task, filters) {
  if (filters.status !== undefined && String(task.status) !== filters.status) return false;
  if (filters.serial && task.serial !== filters.serial) return false;
  if (filters.script_name && task.script_name !== filters.script_name) return false;
  if (filters.source && task.source !== filters.source) return false;
  return true;
}

// The buttons a task's state allows. `after` runs with the task as the API returned it (or null if deleted).
export function taskActions(task, after, { small = true } = {}) {
  const size = small ? " small" : "";
  const buttons = [];
  const active = task.status === 0 || task.status === 1;
  if (active) {
    buttons.push(
      h(
        "button",
        {
          class: `button${size}`,
          type: "button",
          dataset: { action: "stop" },
          disabled: task.stop_requested,
          onclick: async () => {
            const updated = await attempt(() => api("POST", `/task/${task.id}/stop`));
            if (updated) {
              showInfo(`Task ${task.id}: stop requested`);
              after(updated);
            }
          },
        },
        task.stop_requested ? "Stopping…" : "Stop",
      ),
    );
  }
  if (task.status === 3) {
    buttons.push(
      h(
        "button",
        {
          class: `button${size}`,
          type: "button",
          dataset: { action: "retry" },
          onclick: async () => {
            const updated = await attempt(() => api("POST", `/task/${task.id}/retry`));
            if (updated) {
              showInfo(`Task ${task.id} is pending again (retry ${updated.retry_count})`);
              after(updated);
            }
          },
        },
        "Retry",
      ),
    );
  }
  buttons.push(
    h(
      "button",
      {
        class: `button danger${size}`,
        type: "button",
        dataset: { action: "delete" },
        onclick: async () => {
          const running = task.status === 1 ? " It is running: it will be stopped first." : "";
          if (!(await confirmAction(`Delete task ${task.id}?${running}`, "Delete"))) return;
          const done = await attempt(() => api("DELETE", `/task/${task.id}`));
          if (done) {
            showInfo(`Task ${task.id} deleted`);
            after(null);
          }
        },
      },
      "Delete",
    ),
  );
  return buttons;
}

export function renderTasks(view, { feed }) {
  const { filters, page, pageSize } = readFilters();
  const selected = new Set();
  let lastTotal = null;
  let disposed = false;

  // --- stats ---
  const statCards = {};
  const statsBox = h(
    "div",
    { class: "stats" },
    [["total", null], ...STATUS_NAMES.map((name, status) => [name, status])].map(([name, status]) => {
      const card = h(
        "a",
        {
          class: `stat${status === null ? "" : ` status-${status}`}${
            (status === null && filters.status === undefined) || String(status) === filters.status ? " selected" : ""
          }`,
          href: "#",
          dataset: { stat: name },
          onclick: (event) => {
            event.preventDefault();
            routeTo("/tasks", { ...filters, status: status === null ? "" : status, page_size: pageSize });
          },
        },
        h("div", { class: "label" }, name),
        h("div", { class: "value" }, "–"),
      );
      statCards[name] = card.querySelector(".value");
      return card;
    }),
  );

  function showStats(stats) {
    for (const [name, element] of Object.entries(statCards)) element.textContent = String(stats[name] ?? "–");
  }

  // --- toolbar ---
  const deleteSelected = h(
    "button",
    {
      class: "button danger",
      type: "button",
      disabled: true,
      onclick: async () => {
        const ids = [...selected];
        if (!ids.length) return;
        if (!(await confirmAction(`Delete ${ids.length} task${ids.length > 1 ? "s" : ""}? Running ones are stopped first.`, "Delete"))) return;
        const done = await attempt(() => api("DELETE", "/task/batch", { body: { task_ids: ids } }));
        if (done) {
          showInfo(`${done.deleted_count} task${done.deleted_count === 1 ? "" : "s"} deleted`);
          selected.clear();
          refresh();
        }
      },
    },
    "Delete selected",
  );
  const toolbar = h(
    "div",
    { class: "toolbar" },
    h("h1", {}, "Tasks"),
    h("span", { class: "spacer" }),
    deleteSelected,
    h(
      "button",
      {
        class: "button",
        type: "button",
        id: "retry-all",
        onclick: async () => {
          if (!(await confirmAction("Put every failed task that has retries left back to pending?", "Retry all"))) return;
          const done = await attempt(() => api("POST", "/task/retry-all"));
          if (done) {
            showInfo(`${done.retried_count} task${done.retried_count === 1 ? "" : "s"} retried`);
            refresh();
          }
        },
      },
      "Retry all failed",
    ),
    h("a", { class: "button primary", href: "#/tasks/new", id: "new-task" }, "New task"),
  );

  // --- filters ---
  const serials = h("datalist", { id: "known-serials" });
  const filterForm = h(
    "form",
    {
      class: "filters",
      id: "task-filters",
      onsubmit: (event) => {
        event.preventDefault();
        applyFilters();
      },
      onchange: () => applyFilters(),
    },
    field("Status", select("status", [["", "any"], ...STATUS_NAMES.map((name, i) => [i, name])], filters.status)),
    field("Device", h("input", { name: "serial", value: filters.serial || "", list: "known-serials", placeholder: "serial" })),
    field("Script", h("input", { name: "script_name", value: filters.script_name || "", list: "known-scripts", placeholder: "any" })),
    h("datalist", { id: "known-scripts" }, h("option", { value: "post" }), h("option", { value: "noop" })),
    serials,
    field("Source", select("source", [["", "any"], ["api", "api"], ["ui", "ui (dashboard)"]], filters.source)),
    field("Per page", select("page_size", PAGE_SIZES.map((n) => [n, String(n)]), pageSize)),
  );

  function applyFilters() {
    const data = new FormData(filterForm);
    const query = {};
    for (const name of [...FILTERS, "page_size"]) query[name] = String(data.get(name) || "").trim();
    if (query.page_size === "20") query.page_size = "";
    routeTo("/tasks", query);
  }

  // --- table ---
  const tbody = h("tbody");
  const pager = h("div", { class: "pager" });
  const selectAll = h("input", {
    type: "checkbox",
    "aria-label": "Select all on this page",
    onchange: () => {
      for (const box of tbody.querySelectorAll("input[type=checkbox]")) {
        box.checked = selectAll.checked;
        const id = Number(box.value);
        if (selectAll.checked) selected.add(id);
        else selected.delete(id);
      }
      deleteSelected.disabled = selected.size === 0;
    },
  });
  const table = h(
    "table",
    { class: "data cards", id: "tasks-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, selectAll),
        ["ID", "Status", "Script", "Device", "Account", "Source", "Created", "Remark", ""].map((t) => h("th", {}, t)),
      ),
    ),
    tbody,
  );
  const panel = h("div", { class: "panel" }, h("div", { class: "table-wrap" }, table), pager);

  function cell(label, props, ...children) {
    return h("td", { "data-label": label, ...props }, ...children);
  }

  function row(task) {
    const box = h("input", {
      type: "checkbox",
      value: String(task.id),
      checked: selected.has(task.id),
      "aria-label": `Select task ${task.id}`,
      onchange: (event) => {
        if (event.target.checked) selected.add(task.id);
        else selected.delete(task.id);
        deleteSelected.disabled = selected.size === 0;
      },
    });
    return h(
      "tr",
      { dataset: { taskId: String(task.id), status: String(task.status) } },
      cell("", { class: "select" }, box),
      cell("ID", {}, h("a", { href: `#/tasks/${task.id}` }, `#${task.id}`)),
      cell("Status", { class: "status" }, statusBadge(task.status, task.stop_requested)),
      cell("Script", {}, task.script_name),
      cell("Device", { class: "mono" }, h("a", { href: `#/tasks?serial=${encodeURIComponent(task.serial)}` }, task.serial)),
      cell("Account", {}, task.username ? `@${task.username}` : h("span", { class: "muted" }, "—")),
      cell("Source", {}, h("span", { class: `badge source-${task.source}` }, task.source)),
      cell("Created", {}, when(task.created_at)),
      cell("Remark", { class: "remark" }, task.remark || ""),
      cell("", { class: "actions" }, taskActions(task, (updated) => (updated ? replaceRow(updated) : refresh()))),
    );
  }

  function replaceRow(task) {
    const existing = tbody.querySelector(`tr[data-task-id="${task.id}"]`);
    if (!existing) return false;
    const fresh = row(task);
    if (existing.dataset.status !== fresh.dataset.status) fresh.classList.add("changed");
    existing.replaceWith(fresh);
    return true;
  }

  function showPage(data) {
    clear(tbody, data.tasks.map(row));
    if (!data.tasks.length) {
      tbody.append(h("tr", {}, h("td", { colspan: 10, class: "empty", "data-label": "" }, "No tasks match.")));
    }
    selectAll.checked = false;
    const pages = Math.max(1, Math.ceil(data.total / pageSize));
    clear(
      pager,
      h("span", { class: "muted" }, `${data.total} task${data.total === 1 ? "" : "s"} · page ${page} of ${pages}`),
      h(
        "button",
        {
          class: "button small",
          type: "button",
          disabled: page <= 1,
          onclick: () => routeTo("/tasks", { ...filters, page: page - 1, page_size: pageSize === 20 ? "" : pageSize }),
        },
        "‹ Previous",
      ),
      h(
        "button",
        {
          class: "button small",
          type: "button",
          disabled: page >= pages,
          onclick: () => routeTo("/tasks", { ...filters, page: page + 1, page_size: pageSize === 20 ? "" : pageSize }),
        },
        "Next ›",
      ),
    );
  }

  let loading = false;
  let again = false;
  async function load() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const [data, stats] = await Promise.all([
        api("GET", "/task", { query: { ...filters, page, page_size: pageSize } }),
        api("GET", "/task/stats"),
      ]);
      if (disposed) return;
      showPage(data);
      showStats(stats);
      lastTotal = stats.total;
    } catch (error) {
      if (!disposed && error.code !== 40101) showError(error);
    } finally {
      loading = false;
      if (again && !disposed) {
        again = false;
        load();
      }
    }
  }
  const refresh = throttle(load, 400);

  // --- live ---
  const unsubscribe = [
    feed.on("task", (task) => {
      if (replaceRow(task)) {
        if (!matches(task, filters)) refresh();
      } else if (page === 1 && matches(task, filters)) {
        refresh();
      }
    }),
    feed.on("stats", (stats) => {
      showStats(stats);
      if (lastTotal !== null && stats.total !== lastTotal) refresh();
      lastTotal = stats.total;
    }),
    feed.on("resync", () => refresh()),
    feed.on("open", () => refresh()),
  ];

  clear(view, toolbar, statsBox, filterForm, panel);
  load();
  listAll("/devices", "devices")
    .then((devices) => {
      if (!disposed) clear(serials, devices.map((d) => h("option", { value: d.serial }, d.model || "")));
    })
    .catch(() => {});

  return () => {
    disposed = true;
    for (const stop of unsubscribe) stop();
  };
}
