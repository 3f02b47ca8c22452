// Small DOM helpers. Everything the API returns goes in as text, never as HTML.

export const STATUS_NAMES = ["pending", "running", "completed", "failed"];

// h("a", {href: "#/x", class: "y"}, "text", child) → element. on* props become listeners.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name in element && typeof value !== "string") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function statusBadge(status, stopRequested = false) {
  const name = STATUS_NAMES[status] ?? String(status);
  return h("span", { class: `badge status-${status}`, title: `status ${status}` }, stopRequested ? "stopping" : name);
}

const sameDay = (a, b) => a.toDateString() === b.toDateString();
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// A timestamp in a <time> element: short on screen, complete in its tooltip.
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  const text = sameDay(date, new Date()) ? timeFormat.format(date) : dateTimeFormat.format(date);
  return h("time", { datetime: iso, title: fullFormat.format(date) }, text);
}

export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// --- messages ------------------------------------------------------------------------------------

const messages = () => document.getElementById("messages");

function post(kind, text, code, lifetime) {
  const box = messages();
  const item = h(
    "div",
    { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" },
    code !== undefined && code !== null ? h("span", { class: "code" }, String(code)) : null,
    h("span", { class: "text" }, text),
    h("button", { type: "button", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (lifetime) setTimeout(() => item.remove(), lifetime);
  return item;
}

// An error for the operator: the envelope's message, with its code.
export function showError(error) {
  const code = error && typeof error.code === "number" && error.code > 0 ? error.code : null;
  const text = error && error.message ? error.message : String(error);
  return post("error", text, code, 0);
}

export function showInfo(text) {
  return post("info", text, null, 6000);
}

// Run an action, showing its error if it fails; resolves to its result or undefined.
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

// --- dialogs -------------------------------------------------------------------------------------

export function confirmAction(text, okLabel = "OK") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// --- forms and routing ---------------------------------------------------------------------------

export function select(name, options, value, props = {}) {
  return h(
    "select",
    { name, ...props },
    options.map(([optionValue, label]) =>
      h("option", { value: optionValue, selected: String(optionValue) === String(value ?? "") }, label),
    ),
  );
}

export function field(label, control, props = {}) {
  return h("label", props, label, control);
}

// The query of the current hash route ("#/tasks?status=1" → {status: "1"}).
export function routeQuery() {
  const hash = location.hash || "#/";
  const index = hash.indexOf("?");
  return Object.fromEntries(new URLSearchParams(index >= 0 ? hash.slice(index + 1) : ""));
}

export function routeTo(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  const target = `#${path}${text ? `?${text}` : ""}`;
  if (location.hash !== target) location.hash = target;
}

// Call `fn` at most once per `wait` ms, trailing: the last request always runs.
export function throttle(fn, wait) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const delay = Math.max(0, last + wait - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, delay);
  };
}
