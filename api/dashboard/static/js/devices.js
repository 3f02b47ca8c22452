// #/devices — the phones, grouped by hub: online or not, busy with which task, model, last screenshot.

import { api, imageUrl, listAll } from "./api.js";
import { ago, clear, field, h, routeQuery, routeTo, select, showError, throttle } from "./ui.js";

// phonefleet has no on-demand screenshot yet: the latest failure screenshot of a task on the phone
// stands in for it, and the card says so.
const PLACEHOLDER = "No live screen: on-demand screenshots are not available yet.";
const SCREENSHOT_HINT = "Show the most recent failure screenshot of a task on this phone";

async function latestFailureScreenshot(serial) {
  const data = await api("GET", "/task", { query: { serial, status: 3, page_size: 10 } });
  for (const task of data.tasks) {
    const image = await imageUrl(`/task/${task.id}/screenshot`);
    if (image) return { image, task };
  }
  return null;
}

export function renderDevices(view, { feed }) {
  const query = routeQuery();
  const filters = { hub: query.hub || "", online: query.online || "" };
  const objectUrls = [];
  let disposed = false;

  const hubSelect = select("hub", [["", "all hubs"]], filters.hub);
  const filterForm = h(
    "form",
    {
      class: "filters",
      onchange: () => {
        const data = new FormData(filterForm);
        routeTo("/devices", { hub: data.get("hub"), online: data.get("online") });
      },
      onsubmit: (event) => event.preventDefault(),
    },
    field("Hub", hubSelect),
    field("State", select("online", [["", "all"], ["true", "online"], ["false", "offline"]], filters.online)),
  );
  const summary = h("span", { class: "muted", id: "devices-summary" });
  const body = h("div", { id: "devices" });
  clear(view, h("div", { class: "toolbar" }, h("h1", {}, "Devices"), summary), filterForm, body);

  function screenBox(device) {
    const screen = h("div", { class: "screen", dataset: { role: "screen" } }, PLACEHOLDER);
    const button = h(
      "button",
      {
        class: "button small",
        type: "button",
        title: SCREENSHOT_HINT,
        dataset: { action: "screenshot" },
        onclick: async () => {
          button.disabled = true;
          try {
            const found = await latestFailureScreenshot(device.serial);
            if (disposed) return;
            if (found) {
              objectUrls.push(found.image);
              screen.classList.add("has-image");
              clear(screen, h("img", { src: found.image, alt: `Screen of ${device.serial} when task ${found.task.id} failed` }));
              screen.title = `Failure screenshot of task ${found.task.id}`;
              caption.textContent = `Failure screenshot of task #${found.task.id}, not a live view.`;
            } else {
              caption.textContent = "No failure screenshot on this phone yet.";
            }
          } catch (error) {
            showError(error);
          } finally {
            button.disabled = false;
          }
        },
      },
      "Last screenshot",
    );
    const caption = h("span", { class: "muted", dataset: { role: "screen-caption" } });
    return { screen, button, caption };
  }

  function card(device) {
    const { screen, button, caption } = screenBox(device);
    return h(
      "article",
      { class: "panel device", dataset: { serial: device.serial } },
      h(
        "div",
        { class: "top" },
        h("span", { class: "serial" }, device.serial),
        h("span", { class: `badge ${device.online ? "online" : "offline"}` }, device.online ? "online" : "offline"),
      ),
      h("div", { class: "model" }, device.model || "unknown model"),
      h(
        "div",
        { class: "line", dataset: { role: "activity" } },
        device.busy
          ? [h("span", { class: "badge busy" }, "busy"), " ", h("a", { href: `#/tasks/${device.current_task_id}` }, `task #${device.current_task_id}`)]
          : h("span", { class: "muted" }, device.online ? "idle" : "—"),
      ),
      h("div", { class: "line muted", dataset: { role: "seen" } }, `last seen ${ago(device.last_seen)}`),
      screen,
      caption,
      h(
        "div",
        { class: "links" },
        button,
        h("a", { href: `#/tasks?serial=${encodeURIComponent(device.serial)}` }, "Tasks"),
        h("a", { href: `#/tasks/new?serial=${encodeURIComponent(device.serial)}` }, "New task"),
      ),
    );
  }

  let known = new Map();
  function show(devices) {
    const byHub = new Map();
    for (const device of devices) {
      const hub = device.hub || "no hub";
      if (!byHub.has(hub)) byHub.set(hub, []);
      byHub.get(hub).push(device);
    }
    const online = devices.filter((d) => d.online).length;
    const busy = devices.filter((d) => d.busy).length;
    summary.textContent = `${devices.length} phone${devices.length === 1 ? "" : "s"} · ${online} online · ${busy} busy`;
    if (!filters.hub) {
      clear(hubSelect, h("option", { value: "" }, "all hubs"), [...byHub.keys()].sort().map((hub) => h("option", { value: hub }, hub)));
    } else if (!hubSelect.querySelector(`option[value="${CSS.escape(filters.hub)}"]`)) {
      hubSelect.append(h("option", { value: filters.hub, selected: true }, filters.hub));
    }
    // Keep cards that did not change, so that a screenshot on display stays.
    const next = new Map();
    const sections = [...byHub.keys()].sort().map((hub) => {
      const phones = byHub.get(hub);
      const cards = phones.map((device) => {
        const signature = JSON.stringify([device.online, device.busy, device.current_task_id, device.model, device.hub]);
        const previous = known.get(device.serial);
        const element = previous && previous.signature === signature ? previous.element : card(device);
        element.querySelector('[data-role="seen"]').textContent = `last seen ${ago(device.last_seen)}`;
        next.set(device.serial, { signature, element });
        return element;
      });
      const up = phones.filter((d) => d.online).length;
      return h(
        "section",
        { class: "hub", dataset: { hub } },
        h("h2", {}, hub, h("span", { class: "muted" }, `${phones.length} phone${phones.length === 1 ? "" : "s"}, ${up} online`)),
        h("div", { class: "grid" }, cards),
      );
    });
    known = next;
    if (!devices.length) {
      clear(body, h("p", { class: "empty" }, "No phones yet: they appear here once a hub reports them."));
    } else {
      clear(body, sections);
    }
  }

  async function load() {
    try {
      const devices = await listAll("/devices", "devices", { hub: filters.hub, online: filters.online });
      if (!disposed) show(devices);
    } catch (error) {
      if (!disposed && error.code !== 40101) showError(error);
    }
  }
  const refresh = throttle(load, 1000);

  const unsubscribe = [
    feed.on("task", refresh),
    feed.on("resync", refresh),
    feed.on("open", refresh),
  ];
  // Phones come and go without task changes: look again now and then.
  const timer = setInterval(refresh, 15000);
  load();

  return () => {
    disposed = true;
    clearInterval(timer);
    for (const stop of unsubscribe) stop();
    for (const objectUrl of objectUrls) URL.revokeObjectURL(objectUrl);
  };
}
