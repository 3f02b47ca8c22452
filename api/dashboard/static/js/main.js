// The dashboard's entry point: hash routes, the API key dialog, the live feed.

import { api, forgetKey, getKey, setKey } from "./api.js";
import { renderAccounts } from "./accounts.js";
import { renderDevices } from "./devices.js";
import { LiveFeed } from "./events.js";
import { renderNewTask } from "./new-task.js";
import { renderTask } from "./task.js";
import { renderTasks } from "./tasks.js";
import { clear, h, showError } from "./ui.js";

const ROUTES = [
  { pattern: /^\/tasks$/, section: "tasks", render: renderTasks },
  { pattern: /^\/tasks\/new$/, section: "tasks", render: renderNewTask },
  { pattern: /^\/tasks\/(\d+)$/, section: "tasks", render: renderTask },
  { pattern: /^\/devices$/, section: "devices", render: renderDevices },
  { pattern: /^\/accounts$/, section: "accounts", render: renderAccounts },
];

const feed = new LiveFeed();
const view = document.getElementById("view");
let cleanup = null;

function currentPath() {
  const hash = location.hash.replace(/^#/, "") || "/tasks";
  return hash.split("?")[0];
}

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const path = currentPath();
  const match = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).find(({ m }) => m);
  for (const link of document.querySelectorAll(".nav a")) {
    if (match && link.dataset.section === match.r.section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    clear(view, h("p", { class: "empty" }, "No such page. ", h("a", { href: "#/tasks" }, "Go to tasks")));
    return;
  }
  clear(view);
  window.scrollTo(0, 0);
  cleanup = match.r.render(view, { feed, params: match.m.slice(1) }) || null;
}

// --- the key ---------------------------------------------------------------------------------------

const keyDialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("key-input");
const keyReason = document.getElementById("key-reason");

function askForKey(reason) {
  if (keyDialog.open) {
    keyReason.textContent = reason || keyReason.textContent;
    return;
  }
  keyReason.textContent = reason || "";
  keyInput.value = getKey();
  keyDialog.showModal();
  keyInput.focus();
}

document.getElementById("key-button").addEventListener("click", () => askForKey(""));
document.getElementById("key-cancel").addEventListener("click", () => keyDialog.close());
document.getElementById("key-forget").addEventListener("click", () => {
  forgetKey();
  keyDialog.close();
  start();
});
document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  setKey(key);
  keyDialog.close();
  start();
});

// Several calls may fail at once without a key: the first opens the dialog, the others update its text.
window.addEventListener("phonefleet:unauthorized", (event) => askForKey(event.detail.message));

// --- live status -----------------------------------------------------------------------------------

const live = document.getElementById("live");
const LIVE_LABELS = { live: "live", connecting: "connecting…", off: "offline" };
feed.on("state", (state) => {
  live.dataset.state = state;
  live.textContent = LIVE_LABELS[state] || state;
});
feed.on("refused", (error) => {
  if (error.code === 40101) askForKey(error.message);
  else showError(error);
});
feed.on("error", (envelope) => showError(envelope));

// Who we are: the plan of the key (or of the loopback user in single-machine mode).
async function start() {
  const plan = document.getElementById("key-button");
  try {
    const license = await api("GET", "/license/check");
    plan.textContent = getKey() ? `Key · ${license.plan_name}` : `No key · ${license.plan_name}`;
    plan.title = license.message;
  } catch (error) {
    plan.textContent = "API key";
    if (error.code !== 40101) showError(error);
    feed.stop();
    route();
    return;
  }
  feed.restart();
  route();
}

window.addEventListener("hashchange", route);
start();
